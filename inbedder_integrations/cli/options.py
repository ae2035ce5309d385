"""What several commands share: the option groups (model, Chroma store), declared once so
every command spells and documents them alike, and the objects built from them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from ..engine.checkpoints import KNOWN_CHECKPOINTS
from ..engine.hub import check_local_reference
from ..engine.settings import POOLING_MODES
from ..errors import InvalidArgumentError
from ..validation import validate_instruction

if TYPE_CHECKING:
    from ..engine import InBedder

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

    from ..corpus import InstructedCorpus, RetryPolicy

__all__ = [
    "CACHE_DEFAULT",
    "VERBOSE_HELP",
    "Commands",
    "HelpFormatter",
    "add_command",
    "add_model_options",
    "add_store_options",
    "cache_given",
    "cache_setting",
    "check_arguments",
    "chroma_client",
    "engine_from_args",
    "instructed_corpus",
    "model_kwargs",
    "model_name",
    "non_negative",
    "port_number",
    "positive",
    "retry_policy",
]


Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

CACHE_DEFAULT = "$INBEDDER_EMBEDDING_CACHE or ~/.cache/inbedder/embeddings.sqlite"
VERBOSE_HELP = (
    "also show the libraries' logging, warnings and progress bars (e.g. transformers'"
    " 'Loading weights'); by default only the command's own output and progress"
)


class HelpFormatter(argparse.HelpFormatter):
    """``--help`` shows every option's default: appended as ``(default: X)`` unless the help
    already says it, or there is none to show (None: "not given", whose help says what that means;
    a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        silent = default is None or default is False or default is argparse.SUPPRESS or default == []
        if silent or not action.option_strings or "default" in text.lower():
            return text
        return f"{text} (default: %(default)s)"


def add_command(
    commands: Commands, name: str, run: Callable[[argparse.Namespace], None], **kwargs: Any
) -> argparse.ArgumentParser:
    """A subcommand that runs ``run``; it also takes ``--verbose`` after its name."""
    parser = commands.add_parser(name, formatter_class=HelpFormatter, **kwargs)
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    parser.set_defaults(run=run)
    return parser


# --------------------------------------------------------------------------- argument types


def positive(value: str) -> int:
    """argparse type: an int >= 1, so ``--batch-size 0`` is refused before any work starts."""
    return _bounded_int(value, 1, None, "a positive int")


def non_negative(value: str) -> int:
    return _bounded_int(value, 0, None, "an int >= 0")


def port_number(value: str) -> int:
    return _bounded_int(value, 1, 65535, "a port number from 1 to 65535")


def _bounded_int(value: str, low: int, high: int | None, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {value!r}") from None
    if number < low or (high is not None and number > high):
        raise argparse.ArgumentTypeError(f"must be {what}, got {value}")
    return number


# --------------------------------------------------------------------------- the model


#: What an unset model option means (argparse defaults stay None, so that "given" is known).
DEFAULT_MODEL = "default"
#: ``--adapter none``: the untuned base model (None, the unset value, is the shipped adapter).
NO_ADAPTER = "none"


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The model group; every option defaults to None, meaning "not given": only given ones
    reach the engine (and a collection's metadata), and ``serve``'s config file wins over
    unset ones, whatever value they would default to."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model", default=None, help="'default' (the default), a hub id, a model folder or a .gguf file"
    )
    group.add_argument(
        "--adapter",
        default=None,
        help="a PEFT/LoRA adapter folder or hub id merged into the weights; 'auto' (default): the"
        f" shipped InBedder adapter for --model default; '{NO_ADAPTER}': the untuned base model",
    )
    group.add_argument(
        "--checkpoint",
        choices=sorted(KNOWN_CHECKPOINTS),
        default=None,
        help="apply this published checkpoint's recipe to --model (a local copy of it); a hub id"
        " or Hugging Face cache snapshot of one gets its recipe without this",
    )
    group.add_argument("--pooling", choices=POOLING_MODES, default=None, help="default: the model's own")
    group.add_argument(
        "--dtype", default=None, help="auto (default: bf16 where native), float32, bfloat16, float16"
    )
    group.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1, mps")
    group.add_argument(
        "--max-length", type=positive, default=None, help="tokens per prompt (512); only the text is cut"
    )
    group.add_argument(
        "--allow-pickle",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="load pickle weights (*.bin) as full pickles, which can run code: only for files you"
        " trust (without it, pytorch_model*.bin are read weights-only and converted to safetensors)",
    )
    group.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="read and write the on-disk embedding cache (default: on)",
    )
    group.add_argument("--cache-path", default=None, help=f"embedding cache file; default: {CACHE_DEFAULT}")


def model_name(args: argparse.Namespace) -> str:
    return args.model if args.model is not None else DEFAULT_MODEL


def model_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """The given model options only: these are persisted with Chroma collections."""
    options = {
        "checkpoint": args.checkpoint,
        "pooling": args.pooling,
        "dtype": args.dtype,
        "device": args.device,
        "max_length": args.max_length,
        "allow_pickle": args.allow_pickle,
    }
    options = {key: value for key, value in options.items() if value is not None}
    if args.adapter is not None:
        options["adapter"] = None if args.adapter == NO_ADAPTER else args.adapter  # None: the base
    return options


def cache_given(args: argparse.Namespace) -> bool:
    return args.cache is not None or args.cache_path is not None


def cache_setting(args: argparse.Namespace) -> str | bool:
    """The CLI caches vectors unless told not to (a bad ``--cache-path`` fails here, before work)."""
    from ..cache import check_cache_path

    check_cache_path(args.cache_path)
    return False if args.cache is False else (args.cache_path or True)


def check_arguments(args: argparse.Namespace) -> None:
    """What every command's arguments can get wrong, checked before any file is read or model
    loaded: a model or adapter path that is not there, an empty instruction or query."""
    model = getattr(args, "model", None)
    if model not in (None, DEFAULT_MODEL):
        check_local_reference(model)
    for option in ("adapter", "init_adapter"):
        adapter = getattr(args, option, None)
        if adapter not in (None, "auto", NO_ADAPTER, DEFAULT_MODEL):
            check_local_reference(adapter, "adapter")
    for option in ("instruction", "query_instruction"):
        given = getattr(args, option, None)
        for instruction in [given] if isinstance(given, str) else given or []:
            validate_instruction(instruction, f"--{option.replace('_', '-')}")
    query = getattr(args, "query", None)
    if isinstance(query, str) and not query.strip():
        raise InvalidArgumentError(f"the query must be non-empty text, got {query!r}")


def engine_from_args(args: argparse.Namespace, **overrides: Any) -> InBedder:
    """The engine every model option asks for (and the cache), with ``overrides`` on top."""
    from ..engine import InBedder

    options = {**model_kwargs(args), **overrides}
    return InBedder.from_pretrained(model_name(args), **options, cache=cache_setting(args))


# --------------------------------------------------------------------------- the Chroma store


def add_store_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("chroma")
    group.add_argument("--path", default="chroma", help="embedded Chroma folder (default: ./chroma)")
    group.add_argument("--host", default=None, help="a `chroma run` server instead of --path")
    group.add_argument("--port", type=port_number, default=8000, help="the Chroma server's port, with --host")


def chroma_client(args: argparse.Namespace, *, existing: bool = False) -> ClientAPI:
    """``existing``: commands that only read (search, collections) refuse a ``--path`` that
    holds no Chroma store, instead of creating an empty one there (a typo finds nothing)."""
    from ..corpus import connect

    if existing and args.host is None and not (Path(args.path) / "chroma.sqlite3").is_file():
        raise FileNotFoundError(f"--path {args.path!r}: no Chroma store there (no chroma.sqlite3)")
    return connect(args.path, host=args.host, port=args.port)


def retry_policy(args: argparse.Namespace) -> RetryPolicy:
    """``--retries`` where the command has it (index), the default policy elsewhere."""
    from ..corpus import RetryPolicy

    return RetryPolicy(attempts=getattr(args, "retries", RetryPolicy.attempts))


def instructed_corpus(args: argparse.Namespace, *, existing: bool = False) -> InstructedCorpus:
    from ..corpus import InstructedCorpus, collection_name

    collection_name(args.name, "validate")  # a bad corpus name fails before a store is made
    return InstructedCorpus(
        chroma_client(args, existing=existing),
        args.name,
        model=model_name(args),
        model_kwargs=model_kwargs(args),
        cache=cache_setting(args),
        retry=retry_policy(args),
    )
