"""``inbedder embed``, ``info`` and ``cache``: the engine itself and the vectors it keeps on disk."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..errors import InvalidArgumentError
from ..jsonl import read_jsonl
from .options import CACHE_DEFAULT, Commands, add_command, add_model_options, engine_from_args

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
    """One text per line (.txt or stdin ``-``), or the ``text`` field of each JSONL row, lazily.

    A missing file is reported now, before any model is loaded; a bad JSONL row
    when it is reached (:func:`~inbedder_integrations.jsonl.read_jsonl` names its line).
    """
    path = Path(source)
    if source != "-" and not path.is_file():
        raise FileNotFoundError(f"--input {source!r}: no such file")
    if path.suffix == ".jsonl":
        return (row["text"] for row in read_jsonl(path, text_fields=["text"]))
    return _lines(source)


def _lines(source: str) -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        lines = sys.stdin if source == "-" else stack.enter_context(open(source, encoding="utf-8"))
        for line in lines:
            yield line.rstrip("\r\n")


def add_embed_command(commands: Commands) -> None:
    embed = add_command(commands, "embed", cmd_embed, help="embed texts under an instruction")
    embed.add_argument("--instruction", required=True, help="the question asked of every text")
    embed.add_argument("--input", default="-", help=".txt (one text per line), .jsonl ('text' field) or -")
    embed.add_argument("--output", default=None, help="out.npy or out.jsonl; default: JSONL on stdout")
    embed.add_argument("--batch-size", type=int, default=None)
    embed.add_argument("--no-normalize", action="store_true", help="keep raw (unnormalised) vectors")
    embed.add_argument("--progress", action="store_true", help="show a progress bar")
    add_model_options(embed)


def cmd_embed(args: argparse.Namespace) -> None:
    """Streams: texts are read, embedded and written a chunk at a time (flat memory)."""
    output = args.output
    if output not in (None, "-") and not output.endswith((".npy", ".jsonl")):
        raise InvalidArgumentError(f"--output must end in .npy or .jsonl, got {output!r}")
    texts = iter_texts(args.input)
    engine = engine_from_args(args)
    chunks = engine.embed_stream(
        texts, args.instruction, normalize=not args.no_normalize, batch_size=args.batch_size
    )
    arrays: list[np.ndarray] = []
    count = 0
    with contextlib.ExitStack() as stack, tqdm(disable=not args.progress, unit="text") as bar:
        handle = None
        if output in (None, "-"):
            handle = sys.stdout
        elif output.endswith(".jsonl"):
            handle = stack.enter_context(open(output, "w", encoding="utf-8"))
        for batch, vectors in chunks:
            matrix = vectors[args.instruction]
            if handle is None:
                arrays.append(matrix)  # .npy needs every row before it is written
            else:
                for offset, (text, vector) in enumerate(zip(batch, matrix, strict=True)):
                    row = {"index": count + offset, "text": text, "embedding": vector.tolist()}
                    handle.write(json.dumps(row) + "\n")
            count += len(batch)
            bar.update(len(batch))
    if output is not None and output.endswith(".npy"):
        np.save(output, np.concatenate(arrays) if arrays else np.zeros((0, engine.dim), np.float32))
    if output not in (None, "-"):
        print(f"wrote {count} x {engine.dim} embeddings to {output}", file=sys.stderr)


def add_info_command(commands: Commands) -> None:
    info = add_command(commands, "info", cmd_info, help="model, fingerprint, dim, dtype, device")
    info.add_argument("--json", action="store_true")
    add_model_options(info)


def cmd_info(args: argparse.Namespace) -> None:
    details = engine_from_args(args).info()
    if args.json:
        print(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        print(f"{key:>11}: {value}")


def add_cache_command(commands: Commands) -> None:
    cache = add_command(commands, "cache", cmd_cache, help="the on-disk embedding cache: info or clear")
    cache.add_argument("action", choices=["info", "clear"])
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
    print(f"{details['path']}: {details['vectors']} vectors, {details['file_bytes'] / 1e6:.1f} MB on disk")
    print(f"limit {details['max_bytes'] / 1e6:.0f} MB; the least recently used vectors go first")
    for model in details["models"]:
        print(f"  {model['fingerprint']}: {model['vectors']} vectors, {model['instructions']} instructions")
