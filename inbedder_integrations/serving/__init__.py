"""``inbedder serve``: one engine behind the embedding APIs that LangChain, LlamaIndex and
Chroma clients already speak (OpenAI's ``/v1/embeddings``, TEI's ``/embed``).

Needs the ``serve`` extra (FastAPI, uvicorn, prometheus-client); Ray Serve also
needs ``distributed``.  Importing this package without them names the extra.
"""

from __future__ import annotations

from ..instructed import missing_extra

try:
    import fastapi  # noqa: F401
    import prometheus_client  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise missing_extra("serve", exc.name or "fastapi") from exc

from .app import create_app
from .batcher import DynamicBatcher, EmbedRequest, EmbedResult, QueueFullError
from .config import ServeConfig, ServedInstruction, load_config_file, parse_named_instructions, read_api_key
from .run import BackgroundServer, run_ray_server, run_server, serve_in_background

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
