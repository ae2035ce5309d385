"""``inbedder eval`` and ``cluster``: measuring a model, offline, and writing a report of it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clustering import CLUSTER_METHODS
from ..errors import InputNotFoundError, InvalidArgumentError
from .options import (
    Commands,
    add_command,
    add_model_options,
    engine_from_args,
    model_name,
    non_negative,
    positive,
)
from .progress import progress_bar

if TYPE_CHECKING:
    from ..evaluation.heldout import EvalSizes

__all__ = ["add_cluster_command", "add_eval_command", "cmd_cluster", "cmd_eval"]


def add_eval_command(commands: Commands) -> None:
    evaluate = add_command(
        commands, "eval", cmd_eval, help="offline evaluation suites on a fixed split, with baselines"
    )
    evaluate.add_argument(
        "--split",
        choices=("test", "dev"),
        default="test",
        help="test (default): report; dev: for choosing data, settings and checkpoints",
    )
    evaluate.add_argument("--output", default="eval-report", help="folder for report.md and report.json")
    evaluate.add_argument(
        "--baselines", action="store_true", help="add all-MiniLM-L6-v2 and the untuned base"
    )
    evaluate.add_argument(
        "--bbc-per-topic",
        type=positive,
        default=30,
        help="BBC articles per topic taken from the split (max 60)",
    )
    evaluate.add_argument(
        "--bbc-words",
        type=non_negative,
        default=150,
        help="cut articles to their first N words; 0: whole articles",
    )
    evaluate.add_argument(
        "--rt-per-label", type=positive, default=2, help="fresh and rotten reviews per movie"
    )
    evaluate.add_argument(
        "--triplets", type=positive, default=200, help="triplets per question of a two-label suite"
    )
    evaluate.add_argument(
        "--answers", type=positive, default=100, help="texts answered per answer check at most"
    )
    evaluate.add_argument(
        "--suites",
        type=_suite_list,
        default=None,
        help="comma-separated suites to run (default: all), e.g. messages_emotion_intent,message_answers;"
        " heldout_families: the split's held-out question families",
    )
    evaluate.add_argument("--card", default=None, help="a trained folder whose model card gets the results")
    evaluate.add_argument("--seed", type=int, default=0, help="subsets and triplets within the split")
    add_model_options(evaluate)


def _suite_list(value: str) -> list[str]:
    """``--suites a,b``: known suite names, checked before any model loads."""
    from ..evaluation.heldout import check_suites

    names = [name.strip() for name in value.split(",") if name.strip()]
    try:
        check_suites(names or [value])
    except InvalidArgumentError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return names


def _eval_embedders(args: argparse.Namespace) -> list:
    """The model under test, after all-MiniLM-L6-v2 and the untuned base when ``--baselines``.

    The untuned base is loaded with every model option of the model under test
    (pooling, dtype, device, max length, pickle, cache) but without its adapter.
    """
    from ..evaluation.baselines import InBedderEmbedder, MiniLMEmbedder

    engine = engine_from_args(args)
    tuned = engine.info()["adapter"] is not None
    shipped = args.adapter in (None, "auto")
    adapter_name = "shipped InBedder adapter" if shipped else args.adapter
    model = model_name(args)
    embedders: list = [InBedderEmbedder(engine, model + (f" + {adapter_name}" if tuned else ""))]
    if args.baselines:
        embedders.insert(0, MiniLMEmbedder())
        if tuned:
            base = engine_from_args(args, adapter=None)
            embedders.insert(1, InBedderEmbedder(base, f"{model} (untuned)"))
    return embedders


def cmd_eval(args: argparse.Namespace) -> None:
    import logging
    import time
    from dataclasses import asdict

    from ..evaluation.heldout import load_eval_data, offline_report
    from ..evaluation.splits import SPLITS_PATH, splits_sha256
    from ..evaluation.suites import write_report

    if args.card and args.suites:  # the card's evaluation is replaced whole: a part would lose the rest
        raise SystemExit("--card records a whole report; run it without --suites")
    if args.card and not Path(args.card).is_dir():
        raise InputNotFoundError(f"--card {args.card!r}: no such folder (a trained model's output)")
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("inbedder_integrations.evaluation").setLevel(logging.INFO)
    started = time.monotonic()
    sizes = _eval_sizes(args)
    data = load_eval_data(args.split, sizes)
    embedders = _eval_embedders(args)
    with progress_bar("eval", "suite") as advance:
        report = offline_report(embedders, data, args.suites, progress=advance)
    settings = {
        "split": args.split,
        "splits_file": SPLITS_PATH.name,
        "splits_sha256": splits_sha256(),
        **asdict(sizes),
        "dtype": args.dtype or "auto",
        **({"suites": args.suites} if args.suites else {}),
        "data": data.describe(),
        "seconds": round(time.monotonic() - started, 1),
    }
    path = write_report(report, Path(args.output), settings)
    if args.card:
        _add_to_card(Path(args.card), settings, report, args.split)
    print(path.read_text())


def _eval_sizes(args: argparse.Namespace) -> EvalSizes:
    from ..evaluation.heldout import EvalSizes

    return EvalSizes(
        bbc_per_topic=args.bbc_per_topic,
        bbc_words=args.bbc_words,
        rt_per_label=args.rt_per_label,
        triplets=args.triplets,
        seed=args.seed,
        answers=args.answers,
    )


def _add_to_card(card: Path, settings: dict[str, Any], report: dict[str, Any], split: str) -> None:
    """``--card``: the trained model's card records the settings, the results and their tables."""
    from ..evaluation.suites import markdown_tables
    from ..training.train import add_evaluation_to_card

    evaluation = {"settings": settings, "results": report, "markdown": markdown_tables(report, split)}
    add_evaluation_to_card(card, evaluation)


def add_cluster_command(commands: Commands) -> None:
    cluster = add_command(
        commands, "cluster", cmd_cluster, help="cluster a corpus under several instructions, with a report"
    )
    cluster.add_argument(
        "corpus",
        help="bbc, polarity, lee_background, messages, a folder of .txt/.md files, or a .jsonl file",
    )
    cluster.add_argument(
        "--instruction",
        action="append",
        default=None,
        help="repeat for several (bbc, messages have defaults)",
    )
    cluster.add_argument(
        "--limit", type=positive, default=None, help="a fixed random sample of this many texts"
    )
    cluster.add_argument(
        "-k", type=int, default=None,
        help="clusters per instruction; default: chosen from the model's answers and the silhouette",
    )  # fmt: skip
    cluster.add_argument(
        "--no-names", dest="names", action="store_false",
        help="name clusters by their distinctive words only, without asking the model (faster)",
    )  # fmt: skip
    cluster.add_argument(
        "--method", choices=CLUSTER_METHODS, default="kmeans", help="the clustering algorithm"
    )
    cluster.add_argument(
        "--output", default="cluster-report", help="folder for the HTML, PNG, JSON, markdown"
    )
    cluster.add_argument(
        "--seed", type=int, default=0, help="the --limit sample and the clustering's random start"
    )
    add_model_options(cluster)


def cmd_cluster(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from ..clustering import cluster_corpus, instructions_for, load_corpus, write_report

    instructions = instructions_for(args.corpus, args.instruction)
    corpus = load_corpus(args.corpus, limit=args.limit, seed=args.seed)
    print(f"{corpus.name}: {len(corpus.texts)} texts, {len(instructions)} instructions", flush=True)
    engine = engine_from_args(args)
    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        """One bar for the whole job: the library gives its total, fixed, with the first step."""
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="step", desc="cluster")
        bar.update(done - bar.n)

    try:
        report = cluster_corpus(
            engine, corpus, instructions, k=args.k, method=args.method, seed=args.seed,
            name=args.names, progress=progress,
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    paths = write_report(report, args.output)
    print(report.metrics_table())
    print(report.labels_note())
    print(
        f"report: {paths['html']} (also {paths['png'].name}, {paths['json'].name}, {paths['markdown'].name})"
    )
