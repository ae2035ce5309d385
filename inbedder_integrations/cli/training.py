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
from .progress import logging_redirect_tqdm, progress_bar, training_bar

#: Suffixes that name a local data file, never a hub dataset id.
DATA_SUFFIXES = (".json", ".jsonl", ".gz", ".csv", ".parquet", ".txt")

__all__ = ["add_data_command", "add_train_command", "cmd_data_build", "cmd_train"]


def _command_line() -> str:
    """The command as typed, recorded with what it writes (provenance, the model card)."""
    return " ".join(["inbedder", *sys.argv[1:]])


def _number(value: str) -> float:
    """``value`` as a float; NaN where it is none, so every range check below refuses it."""
    try:
        return float(value)
    except ValueError:
        return math.nan


def _fraction(value: str) -> float:
    """argparse type: a float strictly between 0 and 1, refused before the model loads."""
    number = _number(value)
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1 (exclusive), got {value!r}")
    return number


def _weight(value: str) -> float:
    """argparse type: a finite float of 0 or more, refused before the model loads."""
    number = _number(value)
    if not (math.isfinite(number) and number >= 0):
        raise argparse.ArgumentTypeError(f"must be a number of 0 or more, got {value!r}")
    return number


#: ``data build``'s sizes: the full build, and ``--quick`` (about a minute on a CPU core).
BUILD_SIZES = {
    "per_family": (6000, 500),
    "synthetic_messages": (12000, 1000),
    "synthetic_posts": (3000, 250),
    "synthetic_briefs": (6000, 500),
    "max_real_texts": (None, 1000),
}
BUILD_OUTPUT = ("data/inbedder-qa.jsonl.gz", "data/inbedder-qa-quick.jsonl.gz")


def _sized(help_text: str, name: str) -> str:
    full, quick = BUILD_SIZES[name]
    return f"{help_text} (default: {'all' if full is None else full}; with --quick: {quick})"


def add_data_command(commands: Commands) -> None:
    data = commands.add_parser("data", help="training data", formatter_class=HelpFormatter).add_subparsers(
        dest="data_command", required=True
    )
    build = add_command(data, "build", cmd_data_build, help="build the offline short-answer QA set")
    build.add_argument(
        "--quick",
        action="store_true",
        help="a small set in about a minute, to try the pipeline (docs/training.md); sizes given"
        " explicitly still win",
    )
    build.add_argument(
        "--output",
        default=None,
        help=f".jsonl or .jsonl.gz (default: {BUILD_OUTPUT[0]}; with --quick: {BUILD_OUTPUT[1]})",
    )
    build.add_argument(
        "--per-family",
        type=positive,
        default=None,
        help=_sized("rows kept per question family at most", "per_family"),
    )
    build.add_argument(
        "--synthetic-messages",
        type=positive,
        default=None,
        help=_sized("composed customer messages", "synthetic_messages"),
    )
    build.add_argument(
        "--synthetic-posts",
        type=positive,
        default=None,
        help=_sized("composed personal posts", "synthetic_posts"),
    )
    build.add_argument(
        "--synthetic-briefs",
        type=positive,
        default=None,
        help=_sized("composed news briefs", "synthetic_briefs"),
    )
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
        help=_sized("a seeded sample of the real texts", "max_real_texts"),
    )


def build_sizes(args: argparse.Namespace) -> dict[str, int | None]:
    """Each size as given, else the full build's or ``--quick``'s."""
    return {
        name: given if (given := getattr(args, name)) is not None else sizes[args.quick]
        for name, sizes in BUILD_SIZES.items()
    }


def cmd_data_build(args: argparse.Namespace) -> None:
    from ..training.data import build_dataset

    output = args.output or BUILD_OUTPUT[args.quick]
    with progress_bar("data build", "unit") as advance:
        provenance = build_dataset(
            Path(output),
            **build_sizes(args),  # pyright: ignore[reportArgumentType]
            seed=args.seed,
            command=_command_line(),
            wide=args.wide,
            max_family_share=args.max_family_share,
            progress=advance,
        )
    print(f"wrote {provenance['rows']} rows to {output} (provenance: {output}.provenance.json)")


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
    _add_lora_options(training)
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


def _add_lora_options(training: argparse.ArgumentParser) -> None:
    lora = training.add_argument_group("LoRA (the default; --full trains every weight instead)")
    lora.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    lora.add_argument("--lora-r", type=positive, default=16, help="LoRA rank")
    lora.add_argument("--lora-alpha", type=positive, default=32, help="LoRA scaling (alpha / r)")
    lora.add_argument(
        "--lora-target-modules", nargs="+", default=["all-linear"], help="module names, or all-linear"
    )
    lora.add_argument(
        "--lora-layers", type=positive, default=None, help="LoRA on the top N blocks only (faster on a CPU)"
    )
    lora.add_argument(
        "--init-adapter",
        default=None,
        help="continue from this LoRA adapter folder ('default': the shipped one)",
    )
    lora.add_argument(
        "--kl-to-base",
        type=_weight,
        default=0.0,
        help="weight of a KL term towards the untuned base on the answer tokens, so the adapter keeps"
        " what the base answers (0: off; one more forward pass per step)",
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
        kl_to_base=args.kl_to_base,
        bf16=args.bf16,
        logging_steps=args.logging_steps,
        save_steps=args.save_steps,
        gradient_checkpointing=args.gradient_checkpointing,
        seed=args.seed,
        command=_command_line(),
    )
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("inbedder_integrations.training").setLevel(logging.INFO)
    with logging_redirect_tqdm():  # log lines print above the bar, not through it
        result = train(config, callbacks=[training_bar()])
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
