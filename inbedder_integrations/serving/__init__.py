"""``inbedder serve``: one engine behind the embedding APIs that LangChain, LlamaIndex and
Chroma clients already speak (OpenAI's ``/v1/embeddings``, TEI's ``/embed``).

Needs the ``serve`` extra (FastAPI, uvicorn, prometheus-client); Ray Serve also
needs ``distributed``.  Names load on first use (:mod:`..lazy`), so the CLI reads
:mod:`.config`'s defaults without importing the web stack; a missing extra is
named when a name that needs it is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import missing_extra
from ..lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers read; _HOMES below is what runs
    from .app import create_app as create_app
    from .batcher import DynamicBatcher as DynamicBatcher
    from .batcher import EmbedRequest as EmbedRequest
    from .batcher import EmbedResult as EmbedResult
    from .batcher import QueueFullError as QueueFullError
    from .config import ServeConfig as ServeConfig
    from .config import ServedInstruction as ServedInstruction
    from .config import load_config_file as load_config_file
    from .config import parse_named_instructions as parse_named_instructions
    from .config import read_api_key as read_api_key
    from .run import BackgroundServer as BackgroundServer
    from .run import run_ray_server as run_ray_server
    from .run import run_server as run_server
    from .run import serve_in_background as serve_in_background

#: Each public name, once, under the module that defines it (relative to this package).
_HOMES = {
    ".app": ("create_app",),
    ".batcher": ("DynamicBatcher", "EmbedRequest", "EmbedResult", "QueueFullError"),
    ".config": (
        "ServeConfig",
        "ServedInstruction",
        "load_config_file",
        "parse_named_instructions",
        "read_api_key",
    ),
    ".run": ("BackgroundServer", "run_ray_server", "run_server", "serve_in_background"),
}


def _check_extra(home: str) -> None:
    """Every module here but :mod:`.config` needs the web stack: name the extra if it is missing."""
    if home == ".config":
        return
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise missing_extra("serve", exc.name or "fastapi") from exc


__getattr__, __dir__, __all__ = lazy_exports(__name__, _HOMES, before=_check_extra)
