"""``inbedder``: the command line.  It only calls the package's public API."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import POOLING_MODES, InBedder, __version__


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model", default="default", help="'default', a hub id, a model folder or a .gguf file"
    )
    group.add_argument("--adapter", default=None, help="a PEFT/LoRA adapter folder merged into the weights")
    group.add_argument("--pooling", choices=POOLING_MODES, default=None, help="default: the model's own")
    group.add_argument("--dtype", default="auto", help="auto (bf16 where native), float32, bfloat16, float16")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    group.add_argument("--max-length", type=int, default=512, help="tokens per prompt; only the text is cut")


def _engine(args: argparse.Namespace) -> InBedder:
    return InBedder.from_pretrained(
        args.model,
        adapter=args.adapter,
        pooling=args.pooling,
        dtype=args.dtype,
        device=args.device,
        max_length=args.max_length,
    )


def read_texts(source: str) -> list[str]:
    """One text per line (.txt or stdin ``-``), or the ``text`` field of each JSONL row."""
    if source == "-":
        return sys.stdin.read().splitlines()
    path = Path(source)
    if path.suffix == ".jsonl":
        texts = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise SystemExit(f"{path}:{number}: each JSONL row needs a string field 'text'")
            texts.append(row["text"])
        return texts
    return path.read_text(encoding="utf-8").splitlines()


def _write_embeddings(texts: list[str], vectors: np.ndarray, output: str | None) -> None:
    if output is not None and output.endswith(".npy"):
        np.save(output, vectors)
        return
    rows = (
        json.dumps({"index": i, "text": text, "embedding": vector.tolist()})
        for i, (text, vector) in enumerate(zip(texts, vectors, strict=True))
    )
    if output is None or output == "-":
        for row in rows:
            print(row)
        return
    if not output.endswith(".jsonl"):
        raise SystemExit(f"--output must end in .npy or .jsonl, got {output!r}")
    with open(output, "w", encoding="utf-8") as handle:
        handle.writelines(row + "\n" for row in rows)


def cmd_embed(args: argparse.Namespace) -> None:
    texts = read_texts(args.input)
    engine = _engine(args)
    vectors = engine.embed(
        texts,
        args.instruction,
        normalize=not args.no_normalize,
        batch_size=args.batch_size,
        show_progress=args.progress,
    )
    _write_embeddings(texts, vectors, args.output)
    if args.output not in (None, "-"):
        print(f"wrote {len(texts)} x {engine.dim} embeddings to {args.output}", file=sys.stderr)


def cmd_info(args: argparse.Namespace) -> None:
    details = _engine(args).info()
    if args.json:
        print(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        print(f"{key:>11}: {value}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inbedder", description="Instruction-following text embeddings.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    embed = commands.add_parser("embed", help="embed texts under an instruction")
    embed.add_argument("--instruction", required=True, help="the question asked of every text")
    embed.add_argument("--input", default="-", help=".txt (one text per line), .jsonl ('text' field) or -")
    embed.add_argument("--output", default=None, help="out.npy or out.jsonl; default: JSONL on stdout")
    embed.add_argument("--batch-size", type=int, default=None)
    embed.add_argument("--no-normalize", action="store_true", help="keep raw (unnormalised) vectors")
    embed.add_argument("--progress", action="store_true", help="show a progress bar")
    _add_model_options(embed)
    embed.set_defaults(run=cmd_embed)

    info = commands.add_parser("info", help="model, fingerprint, dim, dtype, device")
    info.add_argument("--json", action="store_true")
    _add_model_options(info)
    info.set_defaults(run=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (TypeError, ValueError, FileNotFoundError, ModuleNotFoundError) as exc:
        raise SystemExit(f"inbedder {args.command}: error: {exc}") from exc


if __name__ == "__main__":
    main()
