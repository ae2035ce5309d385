"""``inbedder``: the command line.  It only calls the package's public API.

Each command is a pair: ``add_<name>_command`` declares its arguments, ``cmd_<name>``
runs it; both live in the module of their group (:mod:`.embedding`, :mod:`.store`,
:mod:`.training`, :mod:`.evaluation`, :mod:`.serve`), the option groups several commands share in
:mod:`.options`.  This module is the program: the registry of commands, the parser,
the quiet libraries and the one-line error policy.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from ..errors import InBedderError
from ..quiet import quiet_libraries
from ..version import __version__
from .embedding import add_cache_command, add_embed_command, add_info_command, iter_texts
from .evaluation import _eval_embedders as _eval_embedders
from .evaluation import add_cluster_command, add_eval_command
from .options import VERBOSE_HELP, Commands, HelpFormatter, check_arguments
from .serve import add_serve_command
from .store import add_collections_command, add_index_command, add_search_command
from .training import add_data_command, add_train_command

__all__ = [
    "COMMANDS",
    "build_parser",
    "iter_texts",
    "main",
]

#: The top-level package: a missing module of its own is a bug, not a missing extra.
_PACKAGE = __name__.partition(".")[0]


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
    add_serve_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inbedder", description="Instruction-following text embeddings.", formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(commands)
    return parser


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
        return (exc.name or "").partition(".")[0] not in ("", _PACKAGE)
    return isinstance(exc, (InBedderError, OSError))


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with quiet_libraries(args.verbose):
        try:
            check_arguments(args)  # before any command reads a file or loads a model
            args.run(args)
        except Exception as exc:
            if not _one_line(exc):
                raise
            extra = isinstance(exc, ModuleNotFoundError) and not isinstance(exc, InBedderError)
            hint = " (an optional extra: pip install 'inbedder-integrations[all]')" if extra else ""
            raise SystemExit(f"inbedder {args.command}: error: {exc}{hint}") from exc
