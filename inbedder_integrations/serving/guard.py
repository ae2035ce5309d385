"""What every request passes before a route sees it: the bearer key, the body limit, and
the metrics of its outcome; and the error bodies each API's clients expect.

A pure ASGI middleware, so that it can count a body's bytes as they arrive (a
chunked body without Content-Length is cut off at the limit, not read whole).
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import ServeConfig
from .metrics import ServerMetrics

__all__ = ["ApiError", "Guard"]

#: Paths anyone may call: a load balancer's health check carries no key.
_OPEN_PATHS = frozenset({"/health"})
#: Endpoints named in metrics as they are; any other path counts as "other".
_KNOWN_PATHS = frozenset({"/v1/embeddings", "/v1/models", "/embed", "/", "/health", "/info", "/metrics"})


class ApiError(Exception):
    """An HTTP error with the fields OpenAI's error body has."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.param, self.code, self.headers = param, code, headers

    def response(self, path: str) -> JSONResponse:
        """OpenAI's error body under ``/v1/``, TEI's elsewhere, so each client shows the message."""
        body: dict[str, Any]
        if path.startswith("/v1/"):
            body = {
                "error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}
            }
        else:
            body = {"error": self.message, "error_type": _TEI_ERROR_TYPES.get(self.status, "Validation")}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


#: TEI's ``error_type`` for each status.
_TEI_ERROR_TYPES = {
    401: "Unauthorized",
    404: "Validation",
    413: "Validation",
    422: "Validation",
    503: "Overloaded",
}


class _BodyTooLarge(Exception):
    pass


class Guard:
    """Checks the key and the body size, and records every request's status and latency."""

    def __init__(self, app: ASGIApp, config: ServeConfig, metrics: ServerMetrics) -> None:
        self.app = app
        self.max_body = config.max_body_bytes
        self.key = config.api_key.encode() if config.api_key else None
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        started, status = time.perf_counter(), [500]

        async def send_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send_recording)
                return
            try:
                await self.app(scope, self._counted(receive), send_recording)
            except _BodyTooLarge:
                await self._too_large(path)(scope, receive, send_recording)
        finally:
            self.metrics.observe(_endpoint(path), status[0], time.perf_counter() - started)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        path = scope["path"]
        if self.key is not None and path not in _OPEN_PATHS and not self._authorized(scope):
            return ApiError(
                401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                "authentication_error", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"},
            ).response(path)  # fmt: skip
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_body):
                return self._too_large(path)
        return None

    def _authorized(self, scope: Scope) -> bool:
        assert self.key is not None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                # Constant-time: how much of a guess matched must not show in the timing.
                return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key)
        return False

    def _too_large(self, path: str) -> JSONResponse:
        return ApiError(413, f"the request body is larger than {self.max_body} bytes").response(path)

    def _counted(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _BodyTooLarge
            return message

        return counted


def _endpoint(path: str) -> str:
    """The metrics label of ``path``: bounded, whatever paths clients send."""
    if path in _KNOWN_PATHS:
        return path
    return "/{name}/embed" if path.endswith("/embed") else "other"
