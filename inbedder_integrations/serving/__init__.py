"""``inbedder serve``: one engine behind the embedding APIs that LangChain, LlamaIndex and
Chroma clients already speak (OpenAI's ``/v1/embeddings``, TEI's ``/embed``).

Needs the ``serve`` extra (FastAPI, uvicorn, prometheus-client); Ray Serve also
needs ``distributed``.  Names load on first use (PEP 562), so the CLI reads
:mod:`.config`'s defaults without importing the web stack; a missing extra is
named when a name that needs it is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .batcher import DynamicBatcher, EmbedRequest, EmbedResult, QueueFullError
    from .config import (
        ServeConfig,
        ServedInstruction,
        load_config_file,
        parse_named_instructions,
        read_api_key,
    )
    from .run import BackgroundServer, run_ray_server, run_server, serve_in_background

#: Where each public name lives.
_HOMES = {
    "create_app": "app",
    "DynamicBatcher": "batcher",
    "EmbedRequest": "batcher",
    "EmbedResult": "batcher",
    "QueueFullError": "batcher",
    "ServeConfig": "config",
    "ServedInstruction": "config",
    "load_config_file": "config",
    "parse_named_instructions": "config",
    "read_api_key": "config",
    "BackgroundServer": "run",
    "run_ray_server": "run",
    "run_server": "run",
    "serve_in_background": "run",
}

__all__ = [
    "BackgroundServer",
    "DynamicBatcher",
    "EmbedRequest",
    "EmbedResult",
    "QueueFullError",
    "ServeConfig",
    "ServedInstruction",
    "create_app",
    "load_config_file",
    "parse_named_instructions",
    "read_api_key",
    "run_ray_server",
    "run_server",
    "serve_in_background",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if home != "config":
        _check_extra()
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def _check_extra() -> None:
    from ..errors import missing_extra

    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise missing_extra("serve", exc.name or "fastapi") from exc
