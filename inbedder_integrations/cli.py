"""``inbedder``: the command line.  It only calls the package's public API.

Each command is a pair: ``add_<name>_command`` declares its arguments, ``cmd_<name>``
runs it.  The option groups several commands share (model, Chroma store) are
declared once, below.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
from tqdm.auto import tqdm

from . import POOLING_MODES, InBedder, __version__
from .clustering import CLUSTER_METHODS
from .errors import InBedderError, InvalidArgumentError
from .jsonl import read_jsonl

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from .corpus import InstructedCorpus, RetryPolicy

__all__ = [
    "build_parser",
    "main",
]


Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

_CACHE_DEFAULT = "$INBEDDER_EMBEDDING_CACHE or ~/.cache/inbedder/embeddings.sqlite"
_VERBOSE_HELP = (
    "also show the libraries' logging, warnings and progress bars (e.g. transformers'"
    " 'Loading weights'); by default only the command's own output and progress"
)
#: Library warnings a command line user cannot act on: transformers deprecates a name
#: that peft calls while the adapter is merged.
_QUIET_WARNINGS = (r".*is_gradient_checkpointing.*",)


# --------------------------------------------------------------------------- shared options


def _add_command(
    commands: Commands, name: str, run: Callable[[argparse.Namespace], None], **kwargs: Any
) -> argparse.ArgumentParser:
    """A subcommand that runs ``run``; it also takes ``--verbose`` after its name."""
    parser = commands.add_parser(name, **kwargs)
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)
    parser.set_defaults(run=run)
    return parser


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model", default="default", help="'default', a hub id, a model folder or a .gguf file"
    )
    group.add_argument(
        "--adapter",
        default="auto",
        type=lambda value: None if value == "none" else value,
        help="a PEFT/LoRA adapter folder or hub id merged into the weights; 'auto' (default): the"
        " shipped InBedder adapter for --model default; 'none': the untuned base model",
    )
    group.add_argument("--pooling", choices=POOLING_MODES, default=None, help="default: the model's own")
    group.add_argument("--dtype", default="auto", help="auto (bf16 where native), float32, bfloat16, float16")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    group.add_argument("--max-length", type=int, default=512, help="tokens per prompt; only the text is cut")
    group.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accept pickle weights (*.bin); they can run code when loaded: only for files you trust",
    )
    group.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the on-disk embedding cache"
    )
    group.add_argument("--cache-path", default=None, help=f"embedding cache file; default: {_CACHE_DEFAULT}")


def _model_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """Only what differs from the defaults: these are persisted with Chroma collections."""
    options = {"pooling": args.pooling, "dtype": args.dtype, "device": args.device}
    options = {key: value for key, value in options.items() if value not in (None, "auto")}
    if args.adapter != "auto":
        options["adapter"] = args.adapter  # None: the untuned base model
    if args.max_length != 512:
        options["max_length"] = args.max_length
    if args.allow_pickle:
        options["allow_pickle"] = True
    return options


def _cache(args: argparse.Namespace) -> str | bool:
    """The CLI caches vectors unless told not to."""
    return False if args.no_cache else (args.cache_path or True)


def _engine(args: argparse.Namespace, **overrides: Any) -> InBedder:
    """The engine every model option asks for (and the cache), with ``overrides`` on top."""
    return InBedder.from_pretrained(args.model, **{**_model_kwargs(args), **overrides}, cache=_cache(args))


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("chroma")
    group.add_argument("--path", default="chroma", help="embedded Chroma folder (default: ./chroma)")
    group.add_argument("--host", default=None, help="a `chroma run` server instead of --path")
    group.add_argument("--port", type=int, default=8000)


def _client(args: argparse.Namespace) -> ClientAPI:
    from .corpus import connect

    return connect(args.path, host=args.host, port=args.port)


def _retry(args: argparse.Namespace) -> RetryPolicy:
    """``--retries`` where the command has it (index), the default policy elsewhere."""
    from .corpus import RetryPolicy

    return RetryPolicy(attempts=getattr(args, "retries", RetryPolicy.attempts))


def _corpus(args: argparse.Namespace) -> InstructedCorpus:
    from .corpus import InstructedCorpus

    return InstructedCorpus(
        _client(args),
        args.name,
        model=args.model,
        model_kwargs=_model_kwargs(args),
        cache=_cache(args),
        retry=_retry(args),
    )


# --------------------------------------------------------------------------- embed, info


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
    embed = _add_command(commands, "embed", cmd_embed, help="embed texts under an instruction")
    embed.add_argument("--instruction", required=True, help="the question asked of every text")
    embed.add_argument("--input", default="-", help=".txt (one text per line), .jsonl ('text' field) or -")
    embed.add_argument("--output", default=None, help="out.npy or out.jsonl; default: JSONL on stdout")
    embed.add_argument("--batch-size", type=int, default=None)
    embed.add_argument("--no-normalize", action="store_true", help="keep raw (unnormalised) vectors")
    embed.add_argument("--progress", action="store_true", help="show a progress bar")
    _add_model_options(embed)


def cmd_embed(args: argparse.Namespace) -> None:
    """Streams: texts are read, embedded and written a chunk at a time (flat memory)."""
    output = args.output
    if output not in (None, "-") and not output.endswith((".npy", ".jsonl")):
        raise InvalidArgumentError(f"--output must end in .npy or .jsonl, got {output!r}")
    texts = iter_texts(args.input)
    engine = _engine(args)
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
    info = _add_command(commands, "info", cmd_info, help="model, fingerprint, dim, dtype, device")
    info.add_argument("--json", action="store_true")
    _add_model_options(info)


def cmd_info(args: argparse.Namespace) -> None:
    details = _engine(args).info()
    if args.json:
        print(json.dumps(details, indent=2))
        return
    for key, value in details.items():
        print(f"{key:>11}: {value}")


# --------------------------------------------------------------------------- Chroma


def add_index_command(commands: Commands) -> None:
    index = _add_command(
        commands, "index", cmd_index, help="index documents into Chroma, one collection per instruction"
    )
    index.add_argument(
        "docs", help="a folder of .txt/.md files, a .jsonl file ('text', 'id', 'metadata'), or -"
    )
    index.add_argument("--name", required=True, help="the corpus name (collection names derive from it)")
    index.add_argument(
        "--instruction", action="append", required=True, help="repeat for several instructions"
    )
    index.add_argument("--batch-size", type=int, default=64, help="documents per upsert")
    index.add_argument(
        "--retries",
        type=int,
        default=8,
        help="attempts per call when a Chroma server stops answering (backoff 0.5 s doubling to 8 s)",
    )
    ray = index.add_argument_group("ray (bulk indexing into a Chroma server; the 'distributed' extra)")
    ray.add_argument("--ray", action="store_true", help="embed on a Ray actor pool (docs: also .parquet)")
    ray.add_argument("--address", default=None, help="Ray cluster address; default: start a local one")
    ray.add_argument("--actors", type=int, default=1, help="actors, each loading the model once")
    ray.add_argument("--cpus-per-actor", type=float, default=1, help="CPUs (torch threads) per actor")
    ray.add_argument("--gpus-per-actor", type=float, default=0, help="GPUs per actor (0: CPU only)")
    _add_store_options(index)
    _add_model_options(index)


def cmd_index(args: argparse.Namespace) -> None:
    if args.ray:
        _index_with_ray(args)
        return
    from .corpus import load_documents

    documents = load_documents(args.docs)
    corpus = _corpus(args)
    written = corpus.index(documents, args.instruction, batch_size=args.batch_size, show_progress=True)
    for instruction, count in written.items():
        name = corpus.collection_name(instruction)
        print(f"{name}: {count} written, {len(documents) - count} already there ({instruction})")


def _index_with_ray(args: argparse.Namespace) -> None:
    from .distributed import index_with_ray

    if args.host is None:
        raise InvalidArgumentError("--ray writes into a Chroma server: give its --host (and --port)")
    if str(args.docs) == "-":
        raise InvalidArgumentError("--ray reads a file or folder every worker can reach, not stdin")
    result = index_with_ray(
        args.docs,
        args.name,
        args.instruction,
        host=args.host,
        port=args.port,
        model=args.model,
        model_kwargs=_model_kwargs(args),
        address=args.address,
        actors=args.actors,
        cpus_per_actor=args.cpus_per_actor,
        gpus_per_actor=args.gpus_per_actor,
        batch_size=args.batch_size,
        cache=_cache(args),
        retry=_retry(args),
    )
    rate = result.documents / result.seconds if result.seconds else 0.0
    print(f"{result.documents} documents in {result.seconds:.1f} s on {result.actors} actors ({rate:.1f}/s)")
    for instruction, count in result.written.items():
        print(f"{count} written under {instruction!r}")


def add_search_command(commands: Commands) -> None:
    search = _add_command(commands, "search", cmd_search, help="search a corpus under one instruction")
    search.add_argument("name", help="the corpus name")
    search.add_argument("query")
    search.add_argument("--instruction", required=True)
    search.add_argument("-k", type=int, default=5)
    _add_store_options(search)
    _add_model_options(search)


def cmd_search(args: argparse.Namespace) -> None:
    hits = _corpus(args).search(args.query, args.instruction, k=args.k)
    for rank, hit in enumerate(hits, start=1):
        snippet = " ".join(hit.text.split())[:100]
        print(f"{rank:>2}. {hit.score:.4f}  {hit.id}  {snippet}")


def add_collections_command(commands: Commands) -> None:
    collections = _add_command(
        commands, "collections", cmd_collections, help="list the inbedder collections of a Chroma store"
    )
    collections.add_argument("--json", action="store_true")
    _add_store_options(collections)


def cmd_collections(args: argparse.Namespace) -> None:
    from .corpus import list_inbedder_collections

    rows = list_inbedder_collections(_client(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        print(
            f"{row['name']}  corpus={row['corpus']}  count={row['count']}  instruction={row['instruction']!r}"
        )


# --------------------------------------------------------------------------- the embedding cache


def add_cache_command(commands: Commands) -> None:
    cache = _add_command(commands, "cache", cmd_cache, help="the on-disk embedding cache: info or clear")
    cache.add_argument("action", choices=["info", "clear"])
    cache.add_argument("--fingerprint", default=None, help="clear: only this model's vectors")
    cache.add_argument("--cache-path", default=None, help=f"default: {_CACHE_DEFAULT}")
    cache.add_argument("--json", action="store_true", help="info: print JSON")


def cmd_cache(args: argparse.Namespace) -> None:
    from .cache import EmbeddingCache

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


# --------------------------------------------------------------------------- training


def add_data_command(commands: Commands) -> None:
    data = commands.add_parser("data", help="training data").add_subparsers(
        dest="data_command", required=True
    )
    build = _add_command(data, "build", cmd_data_build, help="build the offline short-answer QA set")
    build.add_argument("--output", default="data/inbedder-qa.jsonl.gz", help=".jsonl or .jsonl.gz")
    build.add_argument("--per-family", type=int, default=6000, help="rows kept per question family at most")
    build.add_argument("--synthetic-messages", type=int, default=12000, help="composed customer messages")
    build.add_argument("--synthetic-posts", type=int, default=3000, help="composed personal posts")
    build.add_argument("--seed", type=int, default=0)


def cmd_data_build(args: argparse.Namespace) -> None:
    from .training.data import build_dataset

    provenance = build_dataset(
        Path(args.output),
        per_family=args.per_family,
        synthetic_messages=args.synthetic_messages,
        synthetic_posts=args.synthetic_posts,
        seed=args.seed,
        command=" ".join(["inbedder", *sys.argv[1:]]),
    )
    print(f"wrote {provenance['rows']} rows to {args.output} (provenance: {args.output}.provenance.json)")


def add_train_command(commands: Commands) -> None:
    training = _add_command(
        commands, "train", cmd_train, help="fine-tune a model into an InBedder (LoRA by default)"
    )
    training.add_argument("--data", required=True, help="alpaca-style JSON/JSONL(.gz) or a hub dataset id")
    training.add_argument("--output", required=True, help="folder for the adapter (or model) and its card")
    training.add_argument("--model", default="default")
    training.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    training.add_argument("--lora-r", type=int, default=16)
    training.add_argument("--lora-alpha", type=int, default=32)
    training.add_argument(
        "--lora-target-modules", nargs="+", default=["all-linear"], help="module names, or all-linear"
    )
    training.add_argument(
        "--save-dtype", default="float32", choices=["float32", "bfloat16"], help="dtype of the saved weights"
    )
    training.add_argument("--epochs", type=float, default=1.0)
    training.add_argument("--max-steps", type=int, default=-1)
    training.add_argument("--lr", type=float, default=2e-4)
    training.add_argument("--batch-size", type=int, default=8)
    training.add_argument("--max-length", type=int, default=256)
    training.add_argument("--max-rows", type=int, default=None)
    training.add_argument("--gradient-checkpointing", action="store_true")
    training.add_argument("--seed", type=int, default=0)


def cmd_train(args: argparse.Namespace) -> None:
    from .training.train import TrainConfig, train

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
        gradient_checkpointing=args.gradient_checkpointing,
        seed=args.seed,
        command=" ".join(["inbedder", *sys.argv[1:]]),
    )
    result = train(config)
    print(
        f"trained {result.steps} steps in {result.seconds:.0f} s;"
        f" loss {result.losses[:1]} -> {result.losses[-1:]}"
    )
    print(f"saved to {result.output_dir}")


# --------------------------------------------------------------------------- evaluation


def add_eval_command(commands: Commands) -> None:
    evaluate = _add_command(
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
        "--bbc-per-topic", type=int, default=30, help="BBC articles per topic taken from the split (max 60)"
    )
    evaluate.add_argument(
        "--bbc-words", type=int, default=150, help="cut articles to their first N words; 0: whole articles"
    )
    evaluate.add_argument("--rt-per-label", type=int, default=2, help="fresh and rotten reviews per movie")
    evaluate.add_argument(
        "--triplets", type=int, default=200, help="triplets per question of a two-label suite"
    )
    evaluate.add_argument("--answers", type=int, default=100, help="texts answered per answer check at most")
    evaluate.add_argument("--card", default=None, help="a trained folder whose model card gets the results")
    evaluate.add_argument("--seed", type=int, default=0, help="subsets and triplets within the split")
    _add_model_options(evaluate)


def _eval_embedders(args: argparse.Namespace) -> list:
    """The model under test, after all-MiniLM-L6-v2 and the untuned base when ``--baselines``.

    The untuned base is loaded with every model option of the model under test
    (pooling, dtype, device, max length, pickle, cache) but without its adapter.
    """
    from .evaluation.baselines import InBedderEmbedder, MiniLMEmbedder

    engine = _engine(args)
    tuned = engine.info()["adapter"] is not None
    adapter_name = "shipped InBedder adapter" if args.adapter == "auto" else args.adapter
    embedders: list = [InBedderEmbedder(engine, f"{args.model}" + (f" + {adapter_name}" if tuned else ""))]
    if args.baselines:
        embedders.insert(0, MiniLMEmbedder())
        if tuned:
            embedders.insert(1, InBedderEmbedder(_engine(args, adapter=None), f"{args.model} (untuned)"))
    return embedders


def cmd_eval(args: argparse.Namespace) -> None:
    import logging
    import time
    from dataclasses import asdict

    from .evaluation.heldout import EvalSizes, load_eval_data, offline_report
    from .evaluation.splits import SPLITS_PATH, splits_sha256
    from .evaluation.suites import markdown_tables, write_report

    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("inbedder_integrations.evaluation").setLevel(logging.INFO)
    started = time.monotonic()
    sizes = EvalSizes(
        bbc_per_topic=args.bbc_per_topic,
        bbc_words=args.bbc_words,
        rt_per_label=args.rt_per_label,
        triplets=args.triplets,
        seed=args.seed,
        answers=args.answers,
    )
    data = load_eval_data(args.split, sizes)
    report = offline_report(_eval_embedders(args), data)
    settings = {
        "split": args.split,
        "splits_file": SPLITS_PATH.name,
        "splits_sha256": splits_sha256(),
        **asdict(sizes),
        "dtype": args.dtype,
        "data": data.describe(),
        "seconds": round(time.monotonic() - started, 1),
    }
    path = write_report(report, Path(args.output), settings)
    if args.card:
        from .training.train import add_evaluation_to_card

        evaluation = {
            "settings": settings,
            "results": report,
            "markdown": markdown_tables(report, args.split),
        }
        add_evaluation_to_card(Path(args.card), evaluation)
    print(path.read_text())


# --------------------------------------------------------------------------- clustering


def add_cluster_command(commands: Commands) -> None:
    cluster = _add_command(
        commands, "cluster", cmd_cluster, help="cluster a corpus under several instructions, with a report"
    )
    cluster.add_argument(
        "corpus", help="bbc, polarity, lee_background, a folder of .txt/.md files, or a .jsonl file"
    )
    cluster.add_argument(
        "--instruction", action="append", default=None, help="repeat for several (bbc has defaults)"
    )
    cluster.add_argument("--limit", type=int, default=None, help="a fixed random sample of this many texts")
    cluster.add_argument(
        "-k", type=int, default=None, help="clusters per instruction; default: by silhouette"
    )
    cluster.add_argument("--method", choices=CLUSTER_METHODS, default="kmeans")
    cluster.add_argument(
        "--output", default="cluster-report", help="folder for the HTML, PNG, JSON, markdown"
    )
    cluster.add_argument("--seed", type=int, default=0)
    _add_model_options(cluster)


def cmd_cluster(args: argparse.Namespace) -> None:
    from .clustering import cluster_corpus, instructions_for, load_corpus, write_report

    instructions = instructions_for(args.corpus, args.instruction)
    corpus = load_corpus(args.corpus, limit=args.limit, seed=args.seed)
    print(f"{corpus.name}: {len(corpus.texts)} texts, {len(instructions)} instructions", flush=True)
    report = cluster_corpus(
        _engine(args), corpus, instructions, k=args.k, method=args.method, seed=args.seed, show_progress=True
    )
    paths = write_report(report, args.output)
    print(report.metrics_table())
    print(
        f"report: {paths['html']} (also {paths['png'].name}, {paths['json'].name}, {paths['markdown'].name})"
    )


# --------------------------------------------------------------------------- the program

#: The commands, in the order ``inbedder --help`` lists them.
COMMANDS: tuple[Callable[[Commands], None], ...] = (
    add_embed_command,
    add_info_command,
    add_index_command,
    add_search_command,
    add_cache_command,
    add_collections_command,
    add_data_command,
    add_train_command,
    add_eval_command,
    add_cluster_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inbedder", description="Instruction-following text embeddings.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(commands)
    return parser


@contextlib.contextmanager
def _quiet_libraries(verbose: bool = False) -> Iterator[None]:
    """While a command runs: transformers' and huggingface_hub's logging (errors only) and
    progress bars (the "Loading weights" bar) off, and the library warnings in
    ``_QUIET_WARNINGS`` filtered; everything as it was afterwards.  ``verbose``: change nothing.

    The command's own progress bars are plain tqdm and stay.
    """
    if verbose:
        yield
        return
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as transformers_logging

    verbosity = (transformers_logging.get_verbosity(), hub_utils.logging.get_verbosity())
    bars = (transformers_logging.is_progress_bar_enabled(), not hub_utils.are_progress_bars_disabled())
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    hub_utils.logging.set_verbosity_error()
    hub_utils.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            for message in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=FutureWarning)
            yield
    finally:
        transformers_logging.set_verbosity(verbosity[0])
        hub_utils.logging.set_verbosity(verbosity[1])
        if bars[0]:
            transformers_logging.enable_progress_bar()
        if bars[1]:
            hub_utils.enable_progress_bars()


def _one_line(exc: BaseException) -> bool:
    """Whether ``main`` reports ``exc`` as one line: an error the user caused and can fix.

    * :class:`~inbedder_integrations.errors.InBedderError`: bad arguments or input, a
      store built for other vectors, a Chroma server that stays down, a missing extra
      the package names (``MissingExtraError``).
    * ``OSError``: the machine, not the code: a missing or unreadable file, a full disk,
      a refused connection, a hub id that does not resolve (transformers says OSError).
    * ``ModuleNotFoundError`` for a module outside this package: an optional extra that
      is not installed (``inbedder train`` without ``[train]``).  One of our own modules
      missing is a broken install or a bug, and keeps its traceback.

    Anything else (a TypeError, KeyError, AttributeError, or a ValueError from deep in a
    library) is a bug: it raises with its traceback.
    """
    if isinstance(exc, ModuleNotFoundError) and not isinstance(exc, InBedderError):
        return (exc.name or "").partition(".")[0] not in ("", __package__)
    return isinstance(exc, (InBedderError, OSError))


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with _quiet_libraries(args.verbose):
        try:
            args.run(args)
        except Exception as exc:
            if not _one_line(exc):
                raise
            extra = isinstance(exc, ModuleNotFoundError) and not isinstance(exc, InBedderError)
            hint = " (an optional extra: pip install 'inbedder-integrations[all]')" if extra else ""
            raise SystemExit(f"inbedder {args.command}: error: {exc}{hint}") from exc


if __name__ == "__main__":
    main()
