"""Running the app: one process under uvicorn, or N Ray Serve replicas behind one endpoint."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .app import create_app
from .config import ServeConfig

if TYPE_CHECKING:
    from ..engine import InBedder

__all__ = ["GRACEFUL_SHUTDOWN_SECONDS", "run_ray_server", "run_server", "serve_in_background"]

logger = logging.getLogger(__name__)

#: How long a stopping server lets in-flight requests finish.
GRACEFUL_SHUTDOWN_SECONDS = 30


def run_server(config: ServeConfig, *, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; then finish in-flight requests and stop."""
    import uvicorn

    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


@contextlib.contextmanager
def serve_in_background(
    config: ServeConfig, engine: InBedder | None = None, *, startup_timeout: float = 300
) -> Iterator[str]:
    """A real server on ``config.host:config.port`` in a thread of this process, sharing
    ``engine``; yields its base URL and stops it (finishing in-flight requests) on exit.

    For notebooks and tests: clients talk real HTTP to it while the model stays loaded once.
    """
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, engine),
            host=config.host,
            port=config.port,
            log_level="warning",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    )
    thread = threading.Thread(target=server.run, name="inbedder-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server on {config.host}:{config.port} did not start")
        time.sleep(0.05)
    try:
        yield f"http://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        thread.join(GRACEFUL_SHUTDOWN_SECONDS + 10)


class _Replica:
    """A Ray Serve replica: builds the same app (and loads its own engine) on its node."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(self.config)


def run_ray_server(
    config: ServeConfig,
    *,
    replicas: int = 1,
    address: str | None = None,
    cpus_per_replica: float = 1,
    gpus_per_replica: float = 0,
    blocking: bool = True,
) -> None:
    """Serve ``config`` from ``replicas`` Ray Serve replicas behind one HTTP endpoint at
    ``config.host:config.port``; ``address``: a Ray cluster (``"auto"``), else a local one.

    Each replica loads its own engine and batches its own requests; Ray Serve's proxy
    spreads requests over them.  ``blocking``: serve until interrupted, then shut down.
    """
    import ray
    from ray import serve

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": config.host, "port": config.port})
    deployment: Any = serve.deployment(
        serve.ingress()(_Replica),
        name="inbedder",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica},
        max_ongoing_requests=config.max_queue,
    )
    serve.run(deployment.bind(config), name="inbedder", route_prefix="/")
    logger.info("Ray Serve: %d replica(s) on http://%s:%d", replicas, config.host, config.port)
    if not blocking:
        return
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
