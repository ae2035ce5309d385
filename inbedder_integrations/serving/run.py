"""Running the app: one process under uvicorn, or N Ray Serve replicas behind one endpoint."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError, positive_int
from .app import create_app, server_state
from .config import ServeConfig
from .protocol import protocol_with_header_timeout

if TYPE_CHECKING:
    from ..engine import InBedder

__all__ = [
    "GRACEFUL_SHUTDOWN_SECONDS",
    "BackgroundServer",
    "run_ray_server",
    "run_server",
    "serve_in_background",
]

logger = logging.getLogger(__name__)

#: How long a stopping server lets in-flight requests finish (``ServeConfig.shutdown_grace_s``).
GRACEFUL_SHUTDOWN_SECONDS = ServeConfig.shutdown_grace_s


def run_server(config: ServeConfig, *, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; then answer in-flight requests and stop within the grace."""
    _uvicorn_server(config, None, log_level).run()


def _uvicorn_server(config: ServeConfig, engine: InBedder | None, log_level: str) -> Any:
    """uvicorn serving ``config`` with its connection limits, timeouts and shutdown grace;
    on SIGTERM (or :meth:`BackgroundServer.stop`) the app starts draining at once."""
    import uvicorn

    app = create_app(config, engine)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            server_state(app).begin_shutdown()
            super().handle_exit(sig, frame)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # the model has loaded and the port is bound (the real one if 0)
                host, port = self.servers[0].sockets[0].getsockname()[:2]
                log_start(server_state(app), f"http://{_url_host(host)}:{port}")

    return Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=log_level,
            http=protocol_with_header_timeout(config.header_timeout_s),
            limit_concurrency=config.max_connections,
            timeout_keep_alive=config.keep_alive_s,  # type: ignore[arg-type]
            timeout_graceful_shutdown=config.shutdown_grace_s,  # type: ignore[arg-type]
        )
    )


def log_start(state: Any, address: str) -> None:
    """The one line a deployment's log needs: what is served, as which names, where."""
    engine, config = state.engine, state.config
    logger.info(
        "serving %s (fingerprint %s, %s on %s) as %s at %s",
        engine.model_name, engine.fingerprint, engine.dtype, engine.device,
        ", ".join(name for name, _ in config.model_names()), address,
    )  # fmt: skip


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class BackgroundServer:
    """A real server in a thread of this process (see :func:`serve_in_background`)."""

    def __init__(self, config: ServeConfig, engine: InBedder | None, startup_timeout: float) -> None:
        self._server = _uvicorn_server(config, engine, "warning")
        self._grace = config.shutdown_grace_s
        self._thread = threading.Thread(target=self._server.run, name="inbedder-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server on {config.host}:{config.port} did not start")
            time.sleep(0.05)
        port = self._server.servers[0].sockets[0].getsockname()[1]  # the real one when port=0
        self.url = f"http://{config.host}:{port}"
        """The base URL: ``{url}/v1`` for OpenAI clients, ``{url}`` for TEI clients."""

    def stop(self) -> None:
        """Stop as SIGTERM does: answer what is in flight within the grace, end the thread."""
        if not self._server.should_exit:
            self._server.handle_exit(signal.SIGTERM, None)
        self._thread.join(self._grace + 10)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve_in_background(
    config: ServeConfig, engine: InBedder | None = None, *, startup_timeout: float = 300
) -> BackgroundServer:
    """Start a real server on ``config.host:config.port`` (0: a free port) in a thread of this
    process, sharing ``engine`` (else loading ``config.model``); returns once it answers.

    For notebooks, tests and benchmarks: clients talk real HTTP to it while the model
    stays loaded once.  ``with serve_in_background(config) as server:`` stops it on exit.
    """
    return BackgroundServer(config, engine, startup_timeout)


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

    if config.port == 0:
        raise InvalidArgumentError("a Ray Serve endpoint needs a fixed port (port=0 picks one per process)")
    positive_int("replicas", replicas)
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
    signal.signal(signal.SIGTERM, _interrupt)  # a polite stop also shuts the deployment down
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
