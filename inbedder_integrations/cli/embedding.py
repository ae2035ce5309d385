"""``inbedder embed``, ``info`` and ``cache``: the engine itself and the vectors it keeps on disk."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..errors import InputNotFoundError, InvalidArgumentError
from ..jsonl import read_jsonl, read_lines
from .options import CACHE_DEFAULT, Commands, add_command, add_model_options, engine_from_args, positive

__all__ = [
    "add_cache_command",
    "add_embed_command",
    "add_info_command",
    "cmd_cache",
    "cmd_embed",
    "cmd_info",
    "iter_texts",
]


def iter_texts(source: str) -> Iterator[str]:
    """One text per line (.txt, stdin ``-`` or any readable file such as a pipe), or the ``text``
    field of each JSONL row, lazily.

    A missing file or a folder is reported now, before any model is loaded; a bad JSONL row
    when it is reached (:func:`~inbedder_integrations.jsonl.read_jsonl` names its line).
    """
    path = Path(source)
    if source != "-" and not path.exists():
        raise InputNotFoundError(f"--input {source!r}: no such file")
    if source != "-" and path.is_dir():
        raise InvalidArgumentError(f"--input {source!r} is a folder: give a .txt or .jsonl file, or -")
    if path.suffix == ".jsonl":
        return (row["text"] for row in read_jsonl(path, text_fields=["text"]))
    return read_lines(source)


def add_embed_command(commands: Commands) -> None:
    embed = add_command(commands, "embed", cmd_embed, help="embed texts under an instruction")
    embed.add_argument("--instruction", required=True, help="the question asked of every text")
    embed.add_argument("--input", default="-", help=".txt (one text per line), .jsonl ('text' field) or -")
    embed.add_argument("--output", default=None, help="out.npy or out.jsonl; default: JSONL on stdout")
    embed.add_argument(
        "--batch-size",
        type=positive,
        default=None,
        help="texts per forward pass at most (default: the engine's 32, fewer for long texts)",
    )
    embed.add_argument("--no-normalize", action="store_true", help="keep raw (unnormalised) vectors")
    embed.add_argument("--progress", action="store_true", help="show a progress bar")
    add_model_options(embed)


def cmd_embed(args: argparse.Namespace) -> None:
    """Streams: texts are read, embedded and written a chunk at a time (flat memory).

    A file output is written beside its target and renamed over it at the end: a
    failed run leaves the previous file (or none), never a truncated one.
    """
    output = None if args.output in (None, "-") else Path(args.output)
    if output is not None:
        _check_output(output, args.input)
    total = count_texts(args.input)  # a bad row of a file fails here, before the model loads
    texts = _not_empty(iter_texts(args.input), args.input)
    engine = engine_from_args(args)
    chunks = engine.embed_stream(
        texts, args.instruction, normalize=not args.no_normalize, batch_size=args.batch_size
    )
    with contextlib.ExitStack() as stack:
        partial = stack.enter_context(_replaced_at_end(output)) if output is not None else None
        count = _write_vectors(
            chunks, args.instruction, partial, engine.dim, progress=args.progress, total=total
        )
    if output is not None:
        print(f"wrote {count} x {engine.dim} embeddings to {output}", file=sys.stderr)


def count_texts(source: str) -> int | None:
    """The texts of a file, every one read now (so a bad JSONL row or a line that is not UTF-8
    fails before the model loads, naming its line); None for stdin, a pipe or a device."""
    path = Path(source)
    if source == "-" or not path.is_file():
        return None
    if path.suffix == ".jsonl":
        return sum(1 for _ in read_jsonl(path, text_fields=["text"]))
    count = 0
    with path.open("rb") as handle:
        for count, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidArgumentError(f"{source}:{count}: not UTF-8; convert it first") from None
    return count


def _not_empty(texts: Iterator[str], source: str) -> Iterator[str]:
    """``texts`` with its first one read now: an input with none is refused before the model loads."""
    first = next(texts, None)
    if first is None:
        where = "stdin" if source == "-" else repr(source)
        raise InvalidArgumentError(f"--input {where} has no texts (it is empty): nothing to embed")
    return itertools.chain([first], texts)


def _check_output(output: Path, source: str) -> None:
    """Everything about ``--output`` that can fail, checked before the model loads."""
    if output.suffix not in (".npy", ".jsonl"):
        raise InvalidArgumentError(f"--output must end in .npy or .jsonl, got {str(output)!r}")
    folder = output.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"--output {str(output)!r}: folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"--output {str(output)!r}: folder {str(folder)!r} is not writable")
    if output.is_dir():
        raise IsADirectoryError(f"--output {str(output)!r} is a folder")
    if source != "-" and output.exists() and output.samefile(source):
        raise InvalidArgumentError(f"--output {str(output)!r} is the --input file: it would be overwritten")


@contextlib.contextmanager
def _replaced_at_end(output: Path) -> Iterator[Path]:
    """A temporary path beside ``output``, renamed over it when the block ends without error."""
    descriptor, name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=output.suffix)
    os.close(descriptor)
    partial = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    partial.chmod(0o666 & ~umask)  # the mode a plain open() would give, not mkstemp's 0600
    try:
        yield partial
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


def _write_vectors(
    chunks: Iterator[tuple[list[str], dict[str, np.ndarray]]],
    instruction: str,
    path: Path | None,
    dim: int,
    *,
    progress: bool,
    total: int | None = None,
) -> int:
    """JSONL rows to ``path`` (stdout when None), or one .npy matrix; returns the row count."""
    arrays: list[np.ndarray] = []
    count = 0
    with contextlib.ExitStack() as stack, tqdm(total=total, disable=not progress, unit="text") as bar:
        handle = None
        if path is None:
            handle = sys.stdout
        elif path.suffix == ".jsonl":
            handle = stack.enter_context(open(path, "w", encoding="utf-8"))
        for batch, vectors in chunks:
            matrix = vectors[instruction]
            if handle is None:
                arrays.append(matrix)  # .npy needs every row before it is written
            else:
                for offset, (text, vector) in enumerate(zip(batch, matrix, strict=True)):
                    row = {"index": count + offset, "text": text, "embedding": vector.tolist()}
                    handle.write(json.dumps(row) + "\n")
            count += len(batch)
            bar.update(len(batch))
    if path is not None and path.suffix == ".npy":
        np.save(path, np.concatenate(arrays) if arrays else np.zeros((0, dim), np.float32))
    return count


def add_info_command(commands: Commands) -> None:
    info = add_command(commands, "info", cmd_info, help="model, fingerprint, dim, dtype, device")
    info.add_argument("--json", action="store_true", help="print JSON instead of aligned rows")
    add_model_options(info)


def cmd_info(args: argparse.Namespace) -> None:
    details = engine_from_args(args).info()
    if args.json:
        print(json.dumps(details, indent=2))
        return
    print("\n".join(info_lines(details)))


def info_lines(details: dict[str, object]) -> list[str]:
    """``key: value`` rows, the keys right-aligned to the longest one (so every colon lines up)."""
    width = max((len(key) for key in details), default=0)
    return [f"{key:>{width}}: {value}" for key, value in details.items()]


def add_cache_command(commands: Commands) -> None:
    cache = add_command(commands, "cache", cmd_cache, help="the on-disk embedding cache: info or clear")
    cache.add_argument(
        "action", choices=["info", "clear"], help="info: what is stored and its size; clear: delete vectors"
    )
    cache.add_argument("--fingerprint", default=None, help="clear: only this model's vectors")
    cache.add_argument("--cache-path", default=None, help=f"default: {CACHE_DEFAULT}")
    cache.add_argument("--json", action="store_true", help="info: print JSON")


def cmd_cache(args: argparse.Namespace) -> None:
    from ..cache import EmbeddingCache

    cache = EmbeddingCache(args.cache_path)
    if args.action == "clear":
        deleted = cache.clear(args.fingerprint)
        print(f"deleted {deleted} vectors from {cache.path}")
        return
    details = cache.info()
    if args.json:
        print(json.dumps(details, indent=2))
        return
    print("\n".join(cache_lines(details)))


def cache_lines(details: dict[str, Any]) -> list[str]:
    """What ``cache info`` prints.  The size is the database's pages in use, which counts vectors
    still in the write-ahead log (a file that another process holds open looks almost empty)."""
    stored = max(details["used_bytes"], details["file_bytes"])
    lines = [
        f"{details['path']}: {_count(details['vectors'], 'vector')}"
        f" ({human_bytes(details['vector_bytes'])} of vectors), {human_bytes(stored)} in the database",
        f"limit {human_bytes(details['max_bytes'])}; the least recently used vectors go first",
    ]
    for model in details["models"]:
        counts = f"{_count(model['vectors'], 'vector')}, {_count(model['instructions'], 'instruction')}"
        lines.append(f"  {model['fingerprint']}: {counts}")
    return lines


def human_bytes(count: int) -> str:
    """``count`` bytes in the largest unit that keeps it >= 1 (decimal: 1 KB = 1000 B)."""
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
