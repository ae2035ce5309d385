"""What ``/openapi.json`` says: each route's request as the server parses it, its path's
parameter, every status the server can answer it with, and the key it needs.

FastAPI documents what it parses; this server parses its bodies by hand (a body nested
too deep gets its own 400, not a 500) and refuses requests in its :class:`~.guard.Guard`
before any route runs, so the document is completed here from the same facts: the
server's settings, its served names and its model's width.  ``tests/serving/test_serve_schema.py``
runs schemathesis against a real server to hold the two together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from .config import ServeConfig
from .guard import OPEN_ROUTES
from .schemas import (
    OpenAIEmbeddingRequest,
    OpenAIError,
    RequestRules,
    TEIEmbedRequest,
    TEIError,
    request_schema,
)

__all__ = ["STATUSES", "RequestModels", "documented_statuses", "openapi_builder"]

#: The request model of each POST route, by path.
RequestModels = Mapping[str, type[OpenAIEmbeddingRequest | TEIEmbedRequest]]

#: Why the server answers each error status, on every route that can get it.
STATUSES: dict[int, str] = {
    400: "Refused: a body that is not JSON (or nested too deeply to parse), an empty `input`, a blank "
    "`instruction`, token ids, a lone surrogate; a server without a key also refuses a `Host` "
    "that names none of its addresses (`host_not_allowed`).",
    401: "A missing or wrong `Authorization: Bearer <key>` (`invalid_api_key`).",
    404: "A model name that is not served (`model_not_found`, listing the served ones).",
    408: "The body did not arrive within the server's body timeout; the connection closes.",
    413: "A body (or its declared `Content-Length`) over `max_body_bytes`, more texts than "
    "`max_inputs`, or a text too long for the model under `truncate=false`.",
    415: "A POST whose `Content-Type` is not `application/json`.",
    422: "A field of the wrong type or value, named in the message.",
    500: "A bug, logged by the server with its traceback.",
    503: "The model is still loading, the queue is full, or the server is shutting down (with "
    "`Retry-After`); past `max_connections` uvicorn answers a plain-text 503.",
}

_PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")


def documented_statuses(method: str, path: str, keyed: bool) -> list[int]:
    """The error statuses a request of ``method`` to ``path`` can get (the guard's and the
    route's): any request can declare too large a body, meet a bug or a busy server."""
    statuses = {413, 500, 503}
    if method.upper() == "POST":
        statuses |= {400, 404, 408, 415, 422}
    if keyed and (method.upper(), path) not in OPEN_ROUTES:
        statuses.add(401)
    if not keyed:
        statuses.add(400)  # host_not_allowed
    return sorted(statuses)


def openapi_builder(
    app: FastAPI,
    config: ServeConfig,
    requests: RequestModels,
    dim: Callable[[], int | None],
) -> Callable[[], dict[str, Any]]:
    """``app.openapi``: the document of ``app`` served under ``config``, whose POST routes take
    ``requests`` (path -> request model); ``dim`` is the model's width once it has loaded."""
    built: dict[int | None, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        width = dim()
        if width not in built:
            built.clear()
            base = get_openapi(title=app.title, version=app.version, routes=app.routes)
            built[width] = _completed(base, config, requests, width)
        return built[width]

    return openapi


def _completed(
    spec: dict[str, Any], config: ServeConfig, requests: RequestModels, dim: int | None
) -> dict[str, Any]:
    served = config.served_names()
    rules = RequestRules(served, config.model, config.max_inputs, config.allow_instruction_field, dim)
    keyed = config.api_key is not None
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            model = requests.get(path) if method == "post" else None
            if model is not None:
                schema = request_schema(model, rules, named_by_path="{" in path)
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": schema}},
                }
            if "{" in path:
                operation["parameters"] = _path_parameters(path, served)
            error = "OpenAIError" if path.startswith("/v1/") else "TEIError"
            for status in documented_statuses(method, path, keyed):
                operation["responses"][str(status)] = _error_response(status, error)
            if keyed and (method.upper(), path) not in OPEN_ROUTES:
                operation["security"] = [{"bearer": []}]
    components = spec.setdefault("components", {})
    _, definitions = models_json_schema(
        [(OpenAIError, "serialization"), (TEIError, "serialization")],
        ref_template="#/components/schemas/{model}",
    )
    components.setdefault("schemas", {}).update(definitions["$defs"])
    if keyed:
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return spec


def _path_parameters(path: str, served: list[str]) -> list[dict[str, Any]]:
    """The parameters of ``path``: only ``{name}``, a served name, exists."""
    parameters = []
    for name in _PARAMETER.findall(path):
        if name != "name":
            raise RuntimeError(f"{path}: document its parameter {name!r} in serving/openapi.py")
        description = "A served name: embeds under its instruction (GET /v1/models lists them)."
        schema = {"type": "string", "enum": served}
        parameters.append(
            {"name": name, "in": "path", "required": True, "schema": schema, "description": description}
        )
    return parameters


def _error_response(status: int, error: str) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{error}"}}}
    answer: dict[str, Any] = {"description": STATUSES[status], "content": content}
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}}
    if status == 503:
        content["text/plain"] = {"schema": {"type": "string"}}
        answer["headers"] = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return answer
