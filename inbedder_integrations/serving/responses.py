"""The error bodies each API's clients expect, and the errors a request can end in."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from ..errors import InBedderError

__all__ = ["ApiError", "InternalServerError"]


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


class InternalServerError(InBedderError, RuntimeError):
    """A bug met while embedding a batch: already logged once with its traceback, so each
    request of the batch answers a JSON 500 without logging it again."""


#: TEI's ``error_type`` for each status.
_TEI_ERROR_TYPES = {
    401: "Unauthorized",
    404: "Validation",
    408: "Validation",
    413: "Validation",
    415: "Validation",
    422: "Validation",
    500: "Backend",
    503: "Overloaded",
}
