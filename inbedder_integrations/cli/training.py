"""``inbedder data build`` and ``train``: the offline training set, and fine-tuning a model on it."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from ..engine.hub import looks_like_path
from ..errors import InputNotFoundError
from .options import Commands, HelpFormatter, add_command, positive

#: Suffixes that name a local data file, never a hub dataset id.
DATA_SUFFIXES = (".json", ".jsonl", ".gz", ".csv", ".parquet", ".txt")

__all__ = ["add_data_command", "add_train_command", "cmd_data_build", "cmd_train"]


def _command_line() -> str:
    """The command as typed, recorded with what it writes (provenance, the model card)."""
    return " ".join(["inbedder", *sys.argv[1:]])


def _fraction(value: str) -> float:
    """argparse type: a float strictly between 0 and 1, refused before the model loads."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1 (exclusive), got {value!r}")
    return number


def add_data_command(commands: Commands) -> None:
    data = commands.add_parser("data", help="training data", formatter_class=HelpFormatter).add_subparsers(
        dest="data_command", required=True
    )
    build = add_command(data, "build", cmd_data_build, help="build the offline short-answer QA set")
    build.add_argument("--output", default="data/inbedder-qa.jsonl.gz", help=".jsonl or .jsonl.gz")
    build.add_argument(
        "--per-family", type=positive, default=6000, help="rows kept per question family at most"
    )
    build.add_argument(
        "--synthetic-messages", type=positive, default=12000, help="composed customer messages"
    )
    build.add_argument("--synthetic-posts", type=positive, default=3000, help="composed personal posts")
    build.add_argument("--synthetic-briefs", type=positive, default=6000, help="composed news briefs")
    build.add_argument("--seed", type=int, default=0, help="seeds the samples, phrasings and shuffles")
    build.add_argument(
        "--wide",
        action="store_true",
        help="also ask the span and judgement families (docs/training.md), no family over --max-family-share",
    )
    build.add_argument(
        "--max-family-share",
        type=_fraction,
        default=0.04,
        help="with --wide: the largest share of the rows any one family may hold",
    )
    build.add_argument(
        "--max-real-texts",
        type=positive,
        default=None,
        help="a seeded sample of the real texts (quick builds)",
    )


def cmd_data_build(args: argparse.Namespace) -> None:
    from ..training.data import build_dataset

    provenance = build_dataset(
        Path(args.output),
        per_family=args.per_family,
        synthetic_messages=args.synthetic_messages,
        synthetic_posts=args.synthetic_posts,
        synthetic_briefs=args.synthetic_briefs,
        seed=args.seed,
        command=_command_line(),
        wide=args.wide,
        max_family_share=args.max_family_share,
        max_real_texts=args.max_real_texts,
    )
    print(f"wrote {provenance['rows']} rows to {args.output} (provenance: {args.output}.provenance.json)")


def add_train_command(commands: Commands) -> None:
    training = add_command(
        commands, "train", cmd_train, help="fine-tune a model into an InBedder (LoRA by default)"
    )
    training.add_argument("--data", required=True, help="alpaca-style JSON/JSONL(.gz) or a hub dataset id")
    training.add_argument("--output", required=True, help="folder for the adapter (or model) and its card")
    training.add_argument(
        "--model",
        default="default",
        help="the base model: a hub id, a folder, or 'default' (the default: SmolLM2-135M)",
    )
    training.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    training.add_argument("--lora-r", type=positive, default=16, help="LoRA rank")
    training.add_argument("--lora-alpha", type=positive, default=32, help="LoRA scaling (alpha / r)")
    training.add_argument(
        "--lora-target-modules", nargs="+", default=["all-linear"], help="module names, or all-linear"
    )
    training.add_argument(
        "--save-dtype", default="float32", choices=["float32", "bfloat16"], help="dtype of the saved weights"
    )
    training.add_argument(
        "--epochs", type=float, default=1.0, help="passes over the data (fractions allowed)"
    )
    training.add_argument(
        "--max-steps", type=int, default=-1, help="stop after N optimiser steps; -1: run --epochs"
    )
    training.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (cosine schedule)")
    training.add_argument("--batch-size", type=positive, default=8, help="rows per step")
    training.add_argument(
        "--max-length", type=positive, default=256, help="tokens per prompt; only the text is cut"
    )
    training.add_argument(
        "--max-rows", type=positive, default=None, help="only the first N rows (default: all)"
    )
    training.add_argument("--families", nargs="+", default=None, help="train on these question families only")
    training.add_argument(
        "--lora-layers", type=positive, default=None, help="LoRA on the top N blocks only (faster on a CPU)"
    )
    training.add_argument(
        "--init-adapter",
        default=None,
        help="continue from this LoRA adapter folder ('default': the shipped one)",
    )
    training.add_argument("--replay", default=None, help="a QA file mixed in against forgetting")
    training.add_argument(
        "--replay-fraction",
        type=_fraction,
        default=0.3,
        help="share of the training rows drawn from --replay",
    )
    training.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast (default: where the hardware runs it natively)",
    )
    training.add_argument(
        "--gradient-checkpointing", action="store_true", help="less memory for more compute"
    )
    training.add_argument("--logging-steps", type=positive, default=10, help="log the loss every N steps")
    training.add_argument(
        "--save-steps", type=positive, default=100, help="checkpoint every N steps (a rerun resumes)"
    )
    training.add_argument(
        "--seed", type=int, default=0, help="seeds LoRA's start, the data order and samples"
    )


def check_data_file(option: str, value: str) -> None:
    """Refuse a data file that is not there, before the Hub is asked for a dataset of that name."""
    path = Path(value).expanduser()
    if not path.exists() and (looks_like_path(value) or path.suffix in DATA_SUFFIXES):
        raise InputNotFoundError(
            f"{option} {value!r}: no such file ({path.absolute()}); give an alpaca-style"
            " JSON/JSONL(.gz) file, or a hub dataset id like 'org/name'"
        )


def cmd_train(args: argparse.Namespace) -> None:
    from ..training.train import TrainConfig, train

    check_data_file("--data", args.data)
    if args.replay is not None:
        check_data_file("--replay", args.replay)
    config = TrainConfig(
        data=args.data,
        output_dir=args.output,
        base_model=args.model,
        lora=not args.full,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_target_modules=(
            "all-linear" if args.lora_target_modules == ["all-linear"] else args.lora_target_modules
        ),
        save_dtype=args.save_dtype,
        epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        max_length=args.max_length,
        max_rows=args.max_rows,
        families=args.families,
        lora_layers=args.lora_layers,
        init_adapter=args.init_adapter,
        replay=args.replay,
        replay_fraction=args.replay_fraction,
        bf16=args.bf16,
        logging_steps=args.logging_steps,
        save_steps=args.save_steps,
        gradient_checkpointing=args.gradient_checkpointing,
        seed=args.seed,
        command=_command_line(),
    )
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("inbedder_integrations.training").setLevel(logging.INFO)
    result = train(config)
    losses = (
        f"loss {result.losses[0]:.4g} -> {result.losses[-1]:.4g}"
        if result.losses
        else f"no loss logged (every {args.logging_steps} steps)"
    )
    print(
        f"trained {result.steps} steps in {result.seconds:.0f} s; {losses};"
        f" {result.examples_per_second} examples/s, bf16 autocast {'on' if result.bf16 else 'off'}"
    )
    print(f"saved to {result.output_dir}")
