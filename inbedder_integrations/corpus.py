"""One corpus under many instructions: one Chroma collection per instruction.

Ingestion is idempotent and resumable: ids come from the text unless given,
each stored row keeps a hash of its text, and a rerun embeds only rows that are
missing or whose text changed.  Calls to a Chroma server that drop (server
restarting, network blip) are retried with exponential backoff.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

from .chroma import InBedderEmbeddingFunction, open_collection, persisted_config
from .documents import (
    INSTRUCTION_KEY,
    SOURCES_KEY,
    TEXT_HASH_KEY,
    CorpusDocument,
    load_documents,
    to_documents,
)
from .embedder import Embedder
from .errors import InBedderError, InvalidArgumentError, InvalidTypeError, MissingError, positive_int
from .hashing import text_sha256
from .remote import served_name_for
from .retry import Backoff, retry_call
from .spec import EmbedderSpec
from .sync import Holders, SyncResult, check_cleanup, clean, delete_everywhere, write_batch
from .validation import validate_instruction, validate_instructions

if TYPE_CHECKING:
    from langchain_chroma import Chroma
    from llama_index.core import VectorStoreIndex

    from .cache import EmbeddingCache

try:
    import chromadb
    import httpx
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
except ImportError as exc:  # pragma: no cover
    from .errors import missing_extra

    raise missing_extra("chroma", "chromadb") from exc

__all__ = [
    "CORPUS_KEY",
    "INSTRUCTION_KEY",
    "SOURCES_KEY",
    "TEXT_HASH_KEY",
    "ChromaUnavailableError",
    "CorpusDocument",
    "InstructedCorpus",
    "RetryPolicy",
    "SearchHit",
    "SyncResult",
    "collection_name",
    "connect",
    "list_inbedder_collections",
    "load_documents",
    "to_documents",
]


CORPUS_KEY = "inbedder_corpus"
_BASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,200}[A-Za-z0-9]$")
#: Errors that mean "the server did not answer", not "the server said no": worth retrying.
_TRANSIENT_ERRORS = (httpx.TransportError, ConnectionError)

T = TypeVar("T")


class ChromaUnavailableError(InBedderError, ConnectionError):
    """The Chroma server stopped answering and did not come back within the retry budget."""


@dataclass(frozen=True)
class RetryPolicy(Backoff):
    """How long :meth:`InstructedCorpus.index` keeps trying a Chroma server that stops answering.

    Only connection-level failures are retried (the request may not have reached
    the server); every write is an idempotent upsert, so repeating one is safe.
    The schedule is :class:`~inbedder_integrations.retry.Backoff`'s, shared with the
    server client: the defaults wait 0.5 + 1 + 2 + 4 + 8 + 8 + 8 = 31.5 s over 8 attempts.
    """

    def call(self, what: str, operation: Callable[[], T]) -> T:
        """``operation()`` (``what`` asked of Chroma), tried again while Chroma does not answer;
        :class:`ChromaUnavailableError` once the attempts are spent."""
        return retry_call(self, "Chroma", what, operation, _TRANSIENT_ERRORS, _unavailable)


def _unavailable(what: str, attempts: int, waited: float, exc: BaseException) -> ChromaUnavailableError:
    return ChromaUnavailableError(
        f"Chroma did not answer ({what}) after {attempts} attempts over {waited:.1f} s: "
        f"{type(exc).__name__}: {exc}"
    )


@dataclass(frozen=True)
class SearchHit:
    id: str
    text: str
    score: float
    """Cosine similarity to the query (1 is identical)."""
    metadata: dict[str, Any]


def connect(path: str | Path | None = None, *, host: str | None = None, port: int = 8000) -> ClientAPI:
    """Embedded Chroma in ``path`` (default ``./chroma``), or a ``chroma run`` server at ``host``;
    a server that does not answer raises :class:`ChromaUnavailableError` naming the address."""
    if host is None:
        return chromadb.PersistentClient(path=str(path or "chroma"))
    try:
        return chromadb.HttpClient(host=host, port=port)
    except (ValueError, *_TRANSIENT_ERRORS) as exc:
        cause = exc if isinstance(exc, _TRANSIENT_ERRORS) else exc.__context__
        if not isinstance(cause, _TRANSIENT_ERRORS):
            raise  # a ValueError of Chroma's own (a bad setting), not an unreachable server
        raise ChromaUnavailableError(
            f"no Chroma server answers at http://{host}:{port} ({cause}); start one with "
            f"`chroma run --host {host} --port {port}`, or check --host and --port"
        ) from exc


def collection_name(corpus: str, instruction: str) -> str:
    """A stable, Chroma-safe name: ``<corpus>--<instruction-slug>-<hash8>``."""
    if not isinstance(corpus, str) or not _BASE_NAME.match(corpus) or ".." in corpus:
        raise InvalidArgumentError(
            f"corpus name must be 3-202 characters of letters, digits, '.', '_' or '-', "
            f"starting and ending with a letter or digit, with no '..' (Chroma's rules); got {corpus!r}"
        )
    instruction = validate_instruction(instruction)
    slug = re.sub(r"[^a-z0-9]+", "-", instruction.lower()).strip("-")[:40].strip("-") or "q"
    digest = text_sha256(instruction)[:8]
    return f"{corpus}--{slug}-{digest}"


class InstructedCorpus:
    """A named corpus indexed under any number of instructions in one Chroma client."""

    def __init__(
        self,
        client: ClientAPI,
        name: str,
        *,
        model: str | EmbedderSpec = "default",
        model_kwargs: dict[str, Any] | None = None,
        cache: EmbeddingCache | str | Path | bool = True,
        retry: RetryPolicy = RetryPolicy(),
        query_server: str | None = None,
        api_key_env_var: str | None = None,
    ) -> None:
        """``model``: a model name (with its load options, ``model_kwargs``), or an
        :class:`~inbedder_integrations.spec.EmbedderSpec` of one (its instructions are unused: each
        collection has its own).  ``cache``: where :meth:`index` keeps computed vectors (True: the default
        file, see :mod:`inbedder_integrations.cache`; False: none), so re-indexing
        seen texts, or indexing them into a second store, costs a lookup.
        ``retry``: how long indexing waits for a Chroma server that stops answering.
        ``query_server``: a running ``inbedder serve`` that embeds the queries of
        :meth:`search` (no model loads here);
        it must serve each collection's instruction, and its fingerprint and query
        instruction must be the collection's (its key: ``$api_key_env_var``)."""
        collection_name(name, "validate")  # fail early on a bad corpus name
        if isinstance(model, EmbedderSpec):
            if model.served or model_kwargs is not None:
                raise InvalidArgumentError(
                    "a corpus embeds its documents with a local model: give a spec of a model (with "
                    "its model_kwargs, and no model_kwargs= besides), and query_server= for queries"
                )
            model, model_kwargs = model.model, dict(model.model_kwargs)
        self.client, self.name, self.model = client, name, model
        self.model_kwargs = dict(model_kwargs or {})
        self.cache = cache
        self.retry = retry
        self.query_server, self.api_key_env_var = query_server, api_key_env_var
        self._embedders: dict[tuple[str, str | None], Embedder] = {}

    def collection_name(self, instruction: str) -> str:
        return collection_name(self.name, instruction)

    def index(
        self,
        documents: Iterable[str | Mapping[str, Any] | CorpusDocument],
        instructions: Sequence[str],
        *,
        batch_size: int = 64,
        show_progress: bool = False,
        cleanup: str | None = None,
        source_key: str = "source",
        query_instructions: Mapping[str, str] | None = None,
    ) -> dict[str, int]:
        """Index ``documents`` under each instruction; returns how many rows each one embedded.

        Safe to rerun after an interruption (a crash, ``kill -9``, a server that
        stayed down past the retry budget): rows already stored with the same text
        are skipped, so nothing is duplicated and only what is missing is embedded.
        Changed metadata is applied without embedding.  ``cleanup``: ``None`` (keep
        every stored row), ``"incremental"`` or ``"full"``, see :meth:`sync`.
        ``query_instructions``: the question queries are asked, per document instruction.
        """
        return self.sync(
            documents,
            instructions,
            batch_size=batch_size,
            show_progress=show_progress,
            cleanup=cleanup,
            source_key=source_key,
            query_instructions=query_instructions,
        ).written

    def sync(
        self,
        documents: Iterable[str | Mapping[str, Any] | CorpusDocument],
        instructions: Sequence[str],
        *,
        batch_size: int = 64,
        show_progress: bool = False,
        cleanup: str | None = None,
        source_key: str = "source",
        query_instructions: Mapping[str, str] | None = None,
    ) -> SyncResult:
        """Make the corpus hold ``documents`` under each instruction: :meth:`index` with every count.

        ``cleanup="full"`` then deletes, under *all* of the corpus's instructions, every
        stored document absent from ``documents``; ``"incremental"`` only those whose
        ``source_key`` metadata is shared with a document of ``documents`` (LangChain's
        indexing modes), unless a source absent from ``documents`` still holds them (see
        :mod:`.sync`).  Everything is validated before the first write.

        ``query_instructions`` maps a document instruction to the question its queries are
        asked (``search`` and the adapters' ``from_corpus`` use it); it is persisted with
        the collection, so a later call that gives another one raises
        :class:`~.chroma.InstructionMismatchError`.  Unmapped: the collection's own (on
        creation, the same question as its documents).
        """
        instructions = validate_instructions(instructions)
        queries = self.query_instructions_for(instructions, query_instructions)
        positive_int("batch_size", batch_size)
        check_cleanup(cleanup)
        corpus = self._validated(documents)
        holders = Holders.of(corpus, cleanup, source_key)
        # The corpus's model embeds every instruction at once (searching through a query server needs none).
        engine = self.spec.load_engine(cache=self.cache)
        collections = {q: self.ensure_collection(q, queries.get(q)) for q in instructions}
        result = SyncResult(dict.fromkeys(instructions, 0), dict.fromkeys(instructions, 0), {})
        with tqdm(total=len(corpus), disable=not show_progress, unit="doc", desc=self.name[:40]) as bar:
            for start in range(0, len(corpus), batch_size):
                batch = corpus[start : start + batch_size]
                try:
                    write_batch(collections, batch, holders, result, engine.embed_many, self.retry.call)
                except ChromaUnavailableError as exc:
                    progress = ", ".join(f"{count} new under {q!r}" for q, count in result.written.items())
                    raise ChromaUnavailableError(
                        f"{exc}. Stopped at document {start} of {len(corpus)} ({progress}); "
                        "nothing written is lost: rerun the same call to resume (stored rows are skipped)."
                    ) from exc
                bar.update(len(batch))
        if cleanup is not None:
            everywhere = {q: self.collection(q) for q in self.instructions()}
            result.deleted = clean(everywhere, {d.id for d in corpus}, holders, self.retry.call)
        return result

    def delete(self, ids: Sequence[str]) -> dict[str, int]:
        """Delete ``ids`` under every instruction of the corpus; returns how many each one held."""
        if isinstance(ids, str) or not all(isinstance(id_, str) and id_ for id_ in ids):
            raise InvalidTypeError("ids must be a list of non-empty strings; wrap a single id: [id]")
        first: dict[str, int] = {}
        for index, id_ in enumerate(ids):
            if id_ in first:
                raise InvalidArgumentError(
                    f"ids[{first[id_]}] and ids[{index}] are both {id_!r}; give each id once"
                )
            first[id_] = index
        everywhere = {q: self.collection(q) for q in self.instructions()}
        return delete_everywhere(
            everywhere, lambda collection: collection.get(ids=list(ids), include=[])["ids"], self.retry.call
        )

    def _validated(
        self, documents: Iterable[str | Mapping[str, Any] | CorpusDocument]
    ) -> list[CorpusDocument]:
        if isinstance(documents, str):
            raise InvalidTypeError(
                "documents must be a list of texts or mappings; wrap a single text: [text]"
            )
        return to_documents(
            {"text": item.text, "id": item.id, "metadata": item.metadata}
            if isinstance(item, CorpusDocument)
            else item
            for item in documents
        )

    def ensure_collection(self, instruction: str, query_instruction: str | None = None) -> Collection:
        """The collection for ``instruction``, created if missing; an existing one must match
        this corpus's model, instruction and (if given) query instruction
        (:class:`~.chroma.InstructionMismatchError` if not)."""
        name = self.collection_name(instruction)
        return self.retry.call(
            f"open {name}", lambda: self._open(instruction, create=True, query_instruction=query_instruction)
        )

    @staticmethod
    def query_instructions_for(
        instructions: Sequence[str], query_instructions: Mapping[str, str] | None
    ) -> dict[str, str]:
        """``query_instructions`` checked: a mapping from some of ``instructions`` to questions."""
        if query_instructions is None:
            return {}
        if not isinstance(query_instructions, Mapping):
            raise InvalidTypeError("query_instructions must map a document instruction to its query question")
        unknown = [key for key in query_instructions if key not in instructions]
        if unknown:
            raise InvalidArgumentError(
                f"query_instructions names {unknown[0]!r}, which is not one of the instructions"
            )
        return {key: validate_instruction(q, "query instruction") for key, q in query_instructions.items()}

    def instructions(self) -> list[str]:
        """The instructions this corpus has been indexed under."""
        found = []
        for collection in self.client.list_collections():
            metadata = collection.metadata or {}
            if metadata.get(CORPUS_KEY) == self.name:
                found.append(str(metadata[INSTRUCTION_KEY]))
        return sorted(found)

    def collection(self, instruction: str) -> Collection:
        """The raw Chroma collection for one instruction (it must have been indexed); with a
        ``query_server``, its function embeds through the server."""
        function = None if self.query_server is None else self._server_function(instruction)
        try:
            return self._open(instruction, create=False, function=function)
        except LookupError:
            raise MissingError(
                f"corpus {self.name!r} has not been indexed under {instruction!r}; "
                f"it has: {self.instructions() or 'no instructions yet'}"
            ) from None

    def _open(
        self,
        instruction: str,
        *,
        create: bool,
        query_instruction: str | None = None,
        function: InBedderEmbeddingFunction | None = None,
    ) -> Collection:
        return open_collection(
            self.client,
            self.collection_name(instruction),
            instruction=instruction,
            query_instruction=query_instruction,
            model=self.model,
            model_kwargs=self.model_kwargs,
            create=create,
            metadata={CORPUS_KEY: self.name, INSTRUCTION_KEY: instruction},
            function=function,
        )

    def _server_function(self, instruction: str) -> InBedderEmbeddingFunction:
        return InBedderEmbeddingFunction.from_spec(self.embedder_spec(instruction))

    @property
    def spec(self) -> EmbedderSpec:
        """The corpus's model and load options, as a spec (without instructions)."""
        return EmbedderSpec(self.model, model_kwargs=self.model_kwargs)

    def embedder_spec(self, instruction: str, query_instruction: str | None = None) -> EmbedderSpec:
        """What this corpus embeds ``instruction``'s texts with: its model and load options, or,
        with a ``query_server``, the name under which that server serves ``instruction``."""
        if self.query_server is None:
            return replace(self.spec, instruction=instruction, query_instruction=query_instruction)
        key = os.environ.get(self.api_key_env_var) if self.api_key_env_var else None
        return EmbedderSpec(
            instruction=instruction,
            query_instruction=query_instruction,
            server_url=self.query_server,
            served_name=served_name_for(self.query_server, instruction, key),
            api_key_env_var=self.api_key_env_var,
        )

    def embedder(self, instruction: str, query_instruction: str | None = None) -> Embedder:
        """The corpus's own embedder for ``instruction`` (built once, then reused): its engine keeps
        vectors in the corpus's ``cache``; with a ``query_server``, the server embeds and no model
        loads here.  Routing asks its question through one (:func:`~.routing.routed_search`)."""
        key = (instruction, query_instruction)
        if key not in self._embedders:
            built = self.embedder_spec(instruction, query_instruction).build(cache=self.cache)
            self._embedders[key] = built
        return self._embedders[key]

    def close(self) -> None:
        """Release the embedders :meth:`embedder` built (each engine's model too, once no other
        live engine uses it); the corpus builds new ones if asked again."""
        embedders, self._embedders = list(self._embedders.values()), {}
        for embedder in embedders:
            embedder.close()

    def search(self, query: str, instruction: str, k: int = 5) -> list[SearchHit]:
        """The ``k`` documents nearest to ``query`` when both are read under ``instruction``."""
        result = self.collection(instruction).query(
            query_texts=[query], n_results=k, include=["documents", "metadatas", "distances"]
        )
        return [
            SearchHit(id_, text or "", 1.0 - float(distance), dict(metadata or {}))
            for id_, text, metadata, distance in zip(
                result["ids"][0],
                (result["documents"] or [[]])[0],
                (result["metadatas"] or [[]])[0],
                (result["distances"] or [[]])[0],
                strict=True,
            )
        ]

    def embeddings(self, instruction: str, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of ``ids`` under ``instruction``, in that order (no re-embedding)."""
        stored = self.collection(instruction).get(ids=list(ids), include=["embeddings"])
        vectors: Iterable[Any] = [] if stored["embeddings"] is None else stored["embeddings"]
        by_id: dict[str, Any] = dict(zip(stored["ids"], vectors, strict=True))
        missing = [id_ for id_ in ids if id_ not in by_id]
        if missing:
            raise MissingError(f"{len(missing)} ids not indexed under {instruction!r}, e.g. {missing[0]!r}")
        return np.asarray([by_id[id_] for id_ in ids], dtype=np.float32)

    def embedder_settings(self, instruction: str) -> dict[str, Any]:
        """What an embedder over this instruction's collection is built with: the corpus's
        ``model`` and ``model_kwargs``, and the collection's persisted ``instruction`` and
        ``query_instruction`` (what the adapters' ``from_corpus`` read)."""
        config = persisted_config(self.collection(instruction))
        assert config is not None  # collection() has checked it is an inbedder collection
        return {
            "model": self.model,
            "instruction": config["instruction"],
            "query_instruction": config["query_instruction"],
            "model_kwargs": self.model_kwargs,
        }

    # The framework views live in the adapters; these two names are aliases kept for one release.
    # Their imports go up a floor, inside the call only: the one upward edge the import contract
    # (pyproject.toml, [tool.importlinter]) ignores, by name.

    def langchain(self, instruction: str) -> Chroma:
        """Deprecated alias of :func:`inbedder_integrations.langchain.corpus_store`
        (``corpus_store(corpus, instruction)``), kept for one release."""
        from .langchain import corpus_store

        _deprecated("corpus.langchain(instruction)", "inbedder_integrations.langchain.corpus_store")
        return corpus_store(self, instruction)

    def llama_index(self, instruction: str) -> VectorStoreIndex:
        """Deprecated alias of :func:`inbedder_integrations.llama_index.corpus_index`
        (``corpus_index(corpus, instruction)``), kept for one release."""
        from .llama_index import corpus_index

        _deprecated("corpus.llama_index(instruction)", "inbedder_integrations.llama_index.corpus_index")
        return corpus_index(self, instruction)


def _deprecated(old: str, new: str) -> None:
    message = f"{old} is deprecated and goes in the next release; use {new}(corpus, instruction)"
    warnings.warn(message, DeprecationWarning, stacklevel=3)


def list_inbedder_collections(client: ClientAPI) -> list[dict[str, Any]]:
    """Every collection built with the inbedder embedding function, with its settings."""
    rows = []
    for collection in client.list_collections():
        config = persisted_config(collection)
        if config is None:
            continue
        metadata = collection.metadata or {}
        rows.append(
            {
                "name": collection.name,
                "corpus": metadata.get(CORPUS_KEY),
                "instruction": config["instruction"],
                "count": collection.count(),
                "fingerprint": config["fingerprint"],
            }
        )
    return rows
