"""Bulk indexing on Ray: a corpus too big for one machine, into a Chroma server.

A Ray Data pipeline reads JSONL, parquet or a folder of text files, turns rows
into the same documents (ids, metadata, text hashes) as
:func:`~inbedder_integrations.corpus.load_documents`, and hands batches to a
pool of actors.  Each actor loads one engine once and indexes its batches with
:meth:`InstructedCorpus.index <inbedder_integrations.corpus.InstructedCorpus.index>`:
all instructions at once through ``embed_many``, one collection per
instruction, ids already stored skipped.  A run that dies part-way is resumed
by running it again.

Needs the ``distributed`` extra: ``pip install 'inbedder-integrations[distributed]'``.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .corpus import ChromaUnavailableError, InstructedCorpus, RetryPolicy, collection_name, connect
from .documents import TEXT_SUFFIXES, decode_text, text_files
from .errors import InvalidArgumentError, missing_extra, positive_int
from .jsonl import split_lines
from .validation import validate_instructions

try:
    import ray
    import ray.data
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise missing_extra("distributed", "ray[data]") from exc

__all__ = [
    "TEXT_SUFFIXES",
    "RayIndexResult",
    "index_with_ray",
    "read_corpus",
]


#: Reading and parsing rows is light next to embedding them: those tasks reserve no CPU,
#: so they never wait behind an actor pool that holds every core (as on a 2-core machine).
_LIGHT_TASK: dict[str, Any] = {"num_cpus": 0}


@dataclass(frozen=True)
class RayIndexResult:
    """What one run wrote: rows per instruction (new or changed), and its wall time."""

    written: dict[str, int]
    documents: int
    seconds: float
    actors: int


def read_corpus(source: str | Path, *, follow_symlinks: bool = False) -> ray.data.Dataset:
    """A Ray dataset with one column, ``document``: each row's text, id and metadata as JSON.

    JSON, not typed columns: rows pass through Arrow untouched (a missing id
    stays missing, a wrong type stays wrong), and the actors check them with
    the single-process loader's rules, naming the bad field.

    ``source``: a ``.jsonl`` file (``text``, optional ``id`` and ``metadata``, as
    for ``inbedder index``), a ``.parquet`` file or folder (a ``text`` column,
    optional ``id``, every other scalar column kept as metadata), or a folder of
    ``.txt``/``.md`` files (id = path relative to the folder).  On a cluster,
    every node must reach it: a shared filesystem, or a ``.jsonl``/parquet URI
    such as ``s3://bucket/corpus/`` (read by Ray's own filesystem layer).
    """
    uri = str(source)
    if "://" in uri:
        if uri.endswith(".jsonl"):
            return _jsonl(uri)
        return _parquet(uri)
    path = Path(source)
    if path.is_file() and path.suffix == ".jsonl":
        return _jsonl(str(path))
    if path.suffix == ".parquet" or (path.is_dir() and any(path.glob("*.parquet"))):
        return _parquet(str(path))
    if path.is_dir():
        files = [str(p) for p in text_files(path, follow_symlinks=follow_symlinks)]
        if not files:
            raise InvalidArgumentError(f"{path}: no .txt/.md files in this folder")
        dataset = ray.data.read_binary_files(files, include_paths=True, **_LIGHT_TASK)
        root = str(path.absolute())  # text_files gives paths under the folder as named, links unresolved
        return dataset.map_batches(
            _rows_from_files,  # pyright: ignore[reportArgumentType]  # Ray's type omits fn_kwargs parameters
            fn_kwargs={"root": root},
            batch_format="pandas",
            **_LIGHT_TASK,
        )
    raise InvalidArgumentError(
        f"{path}: expected a .jsonl file, a .parquet file or folder, or a folder of .txt/.md"
    )


def _jsonl(uri: str) -> ray.data.Dataset:
    # Not ray.data.read_text: it splits with str.splitlines(), which also cuts a row at U+2028.
    dataset = ray.data.read_binary_files(uri, include_paths=True, **_LIGHT_TASK)
    return dataset.map_batches(_rows_from_jsonl, batch_format="pandas", **_LIGHT_TASK)


def _parquet(uri: str) -> ray.data.Dataset:
    dataset = ray.data.read_parquet(uri, **_LIGHT_TASK)
    schema = dataset.schema()  # parquet metadata only: no rows are read here
    columns = schema.names if schema is not None else []
    if "text" not in columns:
        raise InvalidArgumentError(f"{uri}: parquet rows need a 'text' column; found {columns}")
    return dataset.map_batches(_rows_from_table, batch_format="pandas", **_LIGHT_TASK)


def _rows_from_jsonl(batch: Any) -> Any:
    """Each non-blank line (split at "\n" alone) is already a document in JSON: the actors
    parse and check it."""
    import pandas as pd

    texts = (decode_text(bytes(data), path) for data, path in zip(batch["bytes"], batch["path"], strict=True))
    lines = [line for text in texts for line in split_lines(text)]
    return pd.DataFrame({"document": [line for line in lines if line.strip()]})


def _rows_from_table(batch: Any) -> Any:
    import pandas as pd

    extra = [column for column in batch.columns if column not in ("text", "id")]
    rows = []
    for record in batch.to_dict("records"):
        metadata = {key: _scalar(record[key]) for key in extra if record[key] is not None}
        rows.append(_row(record["text"], record.get("id"), metadata))
    return pd.DataFrame({"document": rows})


def _rows_from_files(batch: Any, root: str) -> Any:
    import pandas as pd

    rows = []
    for data, file in zip(batch["bytes"], batch["path"], strict=True):
        relative = os.path.relpath(file, root)
        rows.append(_row(decode_text(bytes(data), file), relative, {"source": Path(file).name}))
    return pd.DataFrame({"document": rows})


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _row(text: Any, id_: Any, metadata: Any) -> str:
    """``text``, ``id`` and ``metadata`` as they are, for :func:`to_documents` to check."""
    return json.dumps({"text": text, "id": id_, "metadata": metadata}, ensure_ascii=False)


@dataclass(frozen=True)
class _CorpusSettings:
    """What every worker needs to open the same corpus on the same server (picklable)."""

    name: str
    host: str
    port: int
    model: str
    model_kwargs: dict[str, Any]
    cache: str | Path | bool
    retry: RetryPolicy

    def open(self) -> InstructedCorpus:
        client = connect(host=self.host, port=self.port)
        return InstructedCorpus(
            client,
            self.name,
            model=self.model,
            model_kwargs=self.model_kwargs,
            cache=self.cache,
            retry=self.retry,
        )


class _CorpusIndexer:
    """A Ray actor: one engine and one Chroma client, loaded once, indexing batch after batch."""

    def __init__(self, settings: _CorpusSettings, instructions: list[str]) -> None:
        from .engine import InBedder

        self.corpus = settings.open()
        self.instructions = instructions
        self.server_down: ChromaUnavailableError | None = None
        InBedder.from_pretrained(settings.model, **settings.model_kwargs)  # now, not in the first batch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Rows written per instruction, or the batch's error as data (see :func:`_portable`).

        A bad row fails only its batch (nothing of it is written): the other
        batches are indexed, and a rerun after the fix embeds only what is missing.
        Once the server has stayed down past the retry budget, later batches
        fail at once instead of each waiting out the budget again.
        """
        rows = list(batch["document"])
        try:
            if self.server_down is not None:
                raise self.server_down
            written = self.corpus.index(
                [_parse_document(row) for row in rows],
                self.instructions,
                batch_size=len(rows),
                show_progress=False,
            )
        except Exception as exc:
            if isinstance(exc, ChromaUnavailableError):
                self.server_down = exc
            error = _portable(exc, f"in a batch of {len(rows)} rows starting {rows[0][:100]!r}")
            return _batch_result([""], [0], 0, error)
        return _batch_result(list(written), list(written.values()), len(rows), "")


def _batch_result(instructions: list[str], written: list[int], documents: int, error: str) -> dict[str, Any]:
    return {
        "instruction": np.array(instructions, dtype=object),
        "written": np.array(written, dtype=np.int64),
        "documents": np.full(len(instructions), documents, dtype=np.int64),
        "error": np.array([error] * len(instructions), dtype=object),
    }


@ray.remote
def _ensure_collections(
    settings: _CorpusSettings, instructions: list[str], query_instructions: dict[str, str]
) -> str:
    """Create or check every collection; returns an error as data (see :func:`_portable`), or ""."""
    try:
        corpus = settings.open()
        for instruction in instructions:
            corpus.ensure_collection(instruction, query_instructions.get(instruction))
    except Exception as exc:
        return _portable(exc, "while preparing the collections")
    return ""


def _portable(error: Exception, where: str) -> str:
    """An exception as JSON: of an exception raised in a Ray Data actor, Ray keeps only the
    text, so the worker sends its type and message and the driver raises the same type."""
    described = {"module": type(error).__module__, "type": type(error).__qualname__}
    return json.dumps({**described, "message": f"{error} ({where})"})


def _rebuilt(portable: str, note: str = "") -> Exception:
    """The exception :func:`_portable` described, of its own type where that can be imported."""
    described = json.loads(portable)
    try:
        error_type = getattr(importlib.import_module(described["module"]), described["type"])
    except (ImportError, AttributeError):
        error_type = RuntimeError
    if not (isinstance(error_type, type) and issubclass(error_type, Exception)):
        error_type = RuntimeError
    # Built without the type's own __init__ (InstructionMismatchError takes four fields):
    # the message is what crossed the process boundary.
    error = error_type.__new__(error_type)
    Exception.__init__(error, described["message"] + note)
    return error


def _parse_document(document: str) -> Any:
    try:
        return json.loads(document)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"not valid JSON ({exc.msg}): {document[:80]!r}") from None


def index_with_ray(
    source: str | Path,
    name: str,
    instructions: Sequence[str],
    *,
    host: str,
    port: int = 8000,
    model: str = "default",
    model_kwargs: dict[str, Any] | None = None,
    address: str | None = None,
    actors: int = 1,
    cpus_per_actor: float = 1,
    gpus_per_actor: float = 0,
    batch_size: int = 64,
    cache: str | Path | bool = True,
    retry: RetryPolicy | None = None,
    follow_symlinks: bool = False,
    query_instructions: Mapping[str, str] | None = None,
) -> RayIndexResult:
    """Index ``source`` under every instruction into the Chroma server at ``host:port``.

    ``address``: a Ray cluster (``"auto"``, ``"ray://head:10001"``); ``None`` joins
    the one this process already started or starts a local one.  Every actor
    reserves ``cpus_per_actor`` CPUs (its torch threads) and ``gpus_per_actor``
    GPUs (the engine's ``device="auto"`` then picks the GPU).  Errors keep their
    type across Ray: a collection made with another model or instruction raises
    :class:`~inbedder_integrations.chroma.InstructionMismatchError` before any
    actor starts; a bad row (``TypeError``/``ValueError`` naming it) fails only
    its batch, and a server that stays down
    (:class:`~inbedder_integrations.corpus.ChromaUnavailableError`) the batches
    after it: the run raises the first such error once the other batches are indexed.
    ``cache``: the on-disk embedding cache each actor reads and writes
    (True: the default file on its node; a path; False: none).  ``retry``: how
    long each call waits for a Chroma server that stops answering (default:
    :class:`~inbedder_integrations.corpus.RetryPolicy`'s).  Rerunning
    after a failure skips what is stored.  ``follow_symlinks``: read links in a
    folder corpus that lead outside it (skipped by default, with a warning).
    """
    instructions, queries = _checked_arguments(
        name, instructions, query_instructions, actors, batch_size, cpus_per_actor, gpus_per_actor
    )
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    settings = _CorpusSettings(
        name, host, port, model, dict(model_kwargs or {}), cache, retry or RetryPolicy()
    )
    resources: dict[str, Any] = {"num_cpus": cpus_per_actor, "num_gpus": gpus_per_actor}
    started = time.perf_counter()
    _prepare_collections(settings, instructions, queries, resources)
    dataset = read_corpus(source, follow_symlinks=follow_symlinks)
    results = _index_batches(dataset, settings, instructions, actors, batch_size, resources)
    written, documents = _totals(results, instructions)
    return RayIndexResult(written, documents, time.perf_counter() - started, actors)


def _checked_arguments(
    name: str,
    instructions: Sequence[str],
    query_instructions: Mapping[str, str] | None,
    actors: int,
    batch_size: int,
    cpus_per_actor: float,
    gpus_per_actor: float,
) -> tuple[list[str], dict[str, str]]:
    """The instructions and their query instructions, once every argument is checked: a bad
    one fails here, in the driver, before Ray starts."""
    instructions = validate_instructions(instructions)
    queries = InstructedCorpus.query_instructions_for(instructions, query_instructions)
    positive_int("actors", actors)
    positive_int("batch_size", batch_size)
    if cpus_per_actor <= 0 or gpus_per_actor < 0:
        raise InvalidArgumentError("need cpus_per_actor > 0 and gpus_per_actor >= 0")
    collection_name(name, instructions[0])  # a bad corpus name fails here, not in a worker
    return instructions, queries


def _prepare_collections(
    settings: _CorpusSettings, instructions: list[str], queries: dict[str, str], resources: dict[str, Any]
) -> None:
    """Create (or check) the collections once, before any actor starts, in a worker shaped
    like the actors: their fingerprint (dtype "auto" resolves per device) is what gets
    recorded, a mismatch fails here, and the driver never loads the model."""
    error = ray.get(_ensure_collections.options(**resources).remote(settings, instructions, queries))
    if error:
        raise _rebuilt(error)


def _index_batches(
    dataset: ray.data.Dataset,
    settings: _CorpusSettings,
    instructions: list[str],
    actors: int,
    batch_size: int,
    resources: dict[str, Any],
) -> list[dict[str, Any]]:
    """Every batch through the actor pool: one result row per batch and instruction."""
    threads = str(max(1, int(resources["num_cpus"])))
    return dataset.map_batches(
        _CorpusIndexer,
        fn_constructor_args=(settings, instructions),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        runtime_env={"env_vars": {"OMP_NUM_THREADS": threads}},
        **resources,
    ).take_all()


def _totals(results: list[dict[str, Any]], instructions: list[str]) -> tuple[dict[str, int], int]:
    """Rows written per instruction and documents read, or the first batch's error (raised
    once every other batch is indexed)."""
    errors = [row["error"] for row in results if row["error"]]
    if errors:
        note = (
            f"; {len(errors)} batch(es) failed and wrote nothing, the others were indexed: "
            "fix the input and rerun (stored rows are skipped)"
        )
        raise _rebuilt(errors[0], note)
    written = dict.fromkeys(instructions, 0)
    documents = 0
    for row in results:
        written[str(row["instruction"])] += int(row["written"])
        if row["instruction"] == instructions[0]:
            documents += int(row["documents"])
    return written, documents
