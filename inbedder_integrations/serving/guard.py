"""What every request passes before a route sees it, and how each one ends.

Admission, in order, before any body is read: the route's method, the bearer key, the
``Host`` of a key-less server, the body's type and declared size.  Then the body is
counted and timed as it arrives (a chunked body without Content-Length is cut off at
the limit, not read whole).  Every request ends in one outcome that metrics record: a
status, or ``disconnected`` when the client left first; a bug answers a JSON 500 in the
API's error shape and is logged once.  A pure ASGI middleware, inside FastAPI's own.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import ServeConfig
from .docs_page import DOCS_PATHS
from .metrics import ServerMetrics
from .responses import ApiError

__all__ = ["DISCONNECTED", "OPEN_ROUTES", "OTHER", "Guard"]

logger = logging.getLogger(__name__)

#: Routes anyone may call, by method and path: a load balancer's health check carries no key,
#: and a browser none for the documentation pages, their files and the schema (docs/serving.md).
OPEN_ROUTES = frozenset((method, path) for path in ("/health", *DOCS_PATHS) for method in ("GET", "HEAD"))
#: The metrics label of a path that no route serves.
OTHER = "other"
#: The metrics status of a request whose client went away before its answer.
DISCONNECTED = "disconnected"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class _BodyTooLarge(Exception):
    pass


class _BodyTooSlow(Exception):
    pass


class Guard:
    """Admits requests (see the module's docstring) and records every request's outcome."""

    def __init__(
        self, app: ASGIApp, config: ServeConfig, metrics: ServerMetrics, routes: Sequence[Any]
    ) -> None:
        """``routes``: the app's own (starlette routes), whose paths and methods the guard
        admits by, and whose path templates label metrics (``/{name}/embed``, never a raw path)."""
        self.app = app
        self.get_paths = frozenset(
            route.path for route in routes if set(getattr(route, "methods", None) or ()) <= {"GET", "HEAD"}
        )
        self.labels: list[tuple[re.Pattern[str], str]] = [(route.path_regex, route.path) for route in routes]
        self.max_body = config.max_body_bytes
        self.body_timeout = config.body_timeout_s
        self.key = config.api_key.encode() if config.api_key else None
        names = (config.host, *_LOOPBACK_NAMES, *config.allowed_hosts)
        self.hosts = frozenset(_host_name(name) for name in names)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, started = scope["path"], time.perf_counter()
        outcome: list[int | str] = [500]
        response_started = [False]

        async def send_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome[0], response_started[0] = message["status"], True
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal.response(path)(scope, receive, send_recording)
                return
            await self.app(scope, self._bounded(receive), send_recording)
        except (_BodyTooLarge, _BodyTooSlow) as exc:
            await self._unread_body_error(exc, path)(scope, receive, send_recording)
        except ClientDisconnect:
            # The client's doing, not the server's: no traceback, its own label in metrics.
            logger.debug("%s %s: the client disconnected before the answer", scope["method"], path)
            outcome[0] = DISCONNECTED
        except Exception:
            if response_started[0]:
                raise
            logger.exception("%s %s failed", scope["method"], path)
            error = ApiError(500, "internal server error (logged by the server)", "server_error")
            await error.response(path)(scope, receive, send_recording)
        finally:
            self.metrics.observe(self._label(path), outcome[0], time.perf_counter() - started)

    def _refusal(self, scope: Scope) -> ApiError | None:
        """Why ``scope`` is refused before its body is read, or None."""
        method, path = scope["method"], scope["path"]
        if self.key is not None and (method, path) not in OPEN_ROUTES and not self._authorized(scope):
            return ApiError(
                401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                "authentication_error", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        if self.key is None and not self._known_host(scope):
            return ApiError(
                400,
                f"the Host header {_header(scope, b'host')!r} names no address of this server; "
                "a server without a key answers only its own names (add one with --allowed-host)",
                code="host_not_allowed",
            )
        if path in self.get_paths and method not in ("GET", "HEAD"):
            return ApiError(405, f"{path} answers GET, not {method}", headers={"Allow": "GET, HEAD"})
        if method == "POST" and _media_type(scope) != "application/json":
            return ApiError(
                415,
                f"the request body must be sent as 'Content-Type: application/json', "
                f"not {_header(scope, b'content-type')!r}",
            )
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            return self._too_large()
        return None

    def _label(self, path: str) -> str:
        """The template of the first route serving ``path``: labels stay bounded, whatever
        paths clients send, and a new route gets its own."""
        return next((label for regex, label in self.labels if regex.match(path)), OTHER)

    def _authorized(self, scope: Scope) -> bool:
        assert self.key is not None
        value = _header(scope, b"authorization")
        if value is None:
            return False
        scheme, _, token = value.encode("latin-1").partition(b" ")
        # Constant-time: how much of a guess matched must not show in the timing.
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key)

    def _known_host(self, scope: Scope) -> bool:
        """Whether the Host header names this server: a page that rebinds its own domain to
        127.0.0.1 sends that domain, which is neither an address nor a configured name."""
        host = _header(scope, b"host")
        if host is None:
            return True  # HTTP/1.0 clients; every browser sends Host
        name = _host_name(host)
        if name in self.hosts:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def _too_large(self) -> ApiError:
        return ApiError(413, f"the request body is larger than {self.max_body} bytes")

    def _unread_body_error(self, exc: Exception, path: str) -> JSONResponse:
        """413 or 408 for a body cut off unread; the connection closes, its rest is never read."""
        if isinstance(exc, _BodyTooLarge):
            error = self._too_large()
        else:
            error = ApiError(408, f"the request body did not arrive within {self.body_timeout:g} s")
        error.headers = {**(error.headers or {}), "Connection": "close"}
        return error.response(path)

    def _bounded(self, receive: Receive) -> Receive:
        """``receive`` that cuts the body off past ``max_body`` bytes or ``body_timeout`` seconds."""
        seen, body_done = 0, False
        deadline = time.monotonic() + self.body_timeout

        async def bounded() -> Message:
            nonlocal seen, body_done
            if body_done:  # after the body, receive waits for the client's disconnect
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.0))
            except TimeoutError:
                raise _BodyTooSlow from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _BodyTooLarge
                body_done = not message.get("more_body", False)
            return message

        return bounded


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _media_type(scope: Scope) -> str:
    return (_header(scope, b"content-type") or "").partition(";")[0].strip().lower()


def _host_name(host: str) -> str:
    """``host`` without its port: ``[::1]:8080`` -> ``::1``, ``Example.org:80`` -> ``example.org``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, sep, port = host.rpartition(":")
    return name if sep and port.isdigit() and ":" not in name else host
