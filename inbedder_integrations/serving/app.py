"""The HTTP face of one engine: OpenAI's and TEI's embedding APIs, health, info and metrics.

:func:`create_app` builds a FastAPI app; ``inbedder serve`` runs it under uvicorn
and ``inbedder serve --ray`` inside Ray Serve replicas.  Each handler parses its
request into the models of :mod:`.schemas` and hands the texts to the
:class:`DynamicBatcher`, the server's one way into the engine: it tokenises them
once, on arrival, and embeds them in batches.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from ..engine import InBedder
from ..errors import InvalidArgumentError, InvalidTypeError
from ..validation import validate_instruction
from ..version import __version__
from .batcher import DynamicBatcher, EmbedRequest, QueueFullError, ServerClosingError, TextTooLongError
from .config import ServeConfig, check_route_names
from .docs_page import add_docs_routes
from .guard import Guard
from .metrics import CONTENT_TYPE, ServerMetrics
from .openapi import openapi_builder
from .responses import ApiError, InternalServerError
from .schemas import (
    HealthResponse,
    InfoResponse,
    ModelCard,
    ModelList,
    OpenAIEmbedding,
    OpenAIEmbeddingRequest,
    OpenAIEmbeddingResponse,
    TEIEmbedRequest,
    Usage,
    parse_body,
)

__all__ = ["create_app", "server_state"]

logger = logging.getLogger(__name__)

#: Seconds a client told "queue full" should wait before retrying.
RETRY_AFTER_SECONDS = 1
#: TEI's routes: huggingface_hub's InferenceClient posts to /, and a client that cannot send
#: prompt_name (LlamaIndex's) picks an instruction by its base URL (/<name>).
_TEI_PATHS = ("/embed", "/", "/{name}/embed", "/{name}")
#: The request model of each POST route, as /openapi.json documents it.
_REQUESTS = {"/v1/embeddings": OpenAIEmbeddingRequest, **dict.fromkeys(_TEI_PATHS, TEIEmbedRequest)}


def create_app(config: ServeConfig, engine: InBedder | None = None) -> FastAPI:
    """An app serving ``config``'s instructions; ``engine`` (else loaded at startup) embeds."""
    state = _ServerState(config, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(title="inbedder", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.inbedder = state
    add_docs_routes(app)
    _add_error_handlers(app)
    _add_routes(app)
    check_route_names(route.path for route in app.routes)  # type: ignore[attr-defined]
    _match_whole_paths(app.routes)
    app.openapi = openapi_builder(  # type: ignore[method-assign]
        app, config, _REQUESTS, lambda: state.engine.dim if state.engine is not None else None
    )
    # The guard learns the routes from the app itself: their methods, and metrics labels.
    app.add_middleware(Guard, config=config, metrics=state.metrics, routes=list(app.routes))  # type: ignore[arg-type]
    return app


def server_state(app: FastAPI) -> _ServerState:
    """The engine, batcher and metrics behind an app made by :func:`create_app`."""
    state = app.state.inbedder
    assert isinstance(state, _ServerState)
    return state


class _ServerState:
    """The engine, its batcher and the metrics; ready once the model has loaded."""

    def __init__(self, config: ServeConfig, engine: InBedder | None) -> None:
        budget = config.max_batch_tokens
        if engine is not None and budget is not None and budget != engine.max_batch_tokens:
            raise InvalidArgumentError(
                f"max_batch_tokens={budget} differs from the given engine's "
                f"{engine.max_batch_tokens}: a server has one budget (build the engine with it)"
            )
        self.config = config
        self.engine: InBedder | None = engine
        self._owns_engine = engine is None
        self.batcher: DynamicBatcher | None = None
        self.metrics = ServerMetrics(lambda: self.batcher.queued_texts if self.batcher else 0)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        config = self.config
        self._loop = asyncio.get_running_loop()
        if self.engine is None:
            self.engine = await asyncio.to_thread(
                InBedder.from_pretrained, config.model, **config.engine_kwargs(), cache=config.cache
            )
        self.batcher = DynamicBatcher(
            self.engine,
            max_batch_texts=config.max_batch_texts,
            max_batch_tokens=self.engine.max_batch_tokens,
            max_wait_s=config.max_wait_ms / 1000,
            max_queue=config.max_queue,
            on_batch=self.metrics.on_batch,
            on_abandoned=self.metrics.abandoned.inc,
        )
        self.batcher.start()

    def begin_shutdown(self) -> None:
        """Start draining now (callable from a signal handler or another thread): new requests
        get 503, and those still queued at half the grace period get 503 too, so every client
        is answered within the grace and nobody's abandoned work keeps the process alive."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        if self.batcher is None:
            return
        self.batcher.refuse_new_work()
        assert self._loop is not None
        self._loop.call_later(self.config.shutdown_grace_s / 2, self.batcher.abandon_queued)
        logger.info("shutting down: queued requests get 503 in %g s", self.config.shutdown_grace_s / 2)

    async def stop(self) -> None:
        """Finish what is queued; release the model if this server loaded it."""
        if self.batcher is not None:
            await asyncio.to_thread(self.batcher.close)
        if self._owns_engine and self.engine is not None:
            self.engine.close()

    def ready(self) -> tuple[InBedder, DynamicBatcher]:
        if self.engine is None or self.batcher is None:
            raise ApiError(503, "the model is still loading", "server_error", code="loading")
        return self.engine, self.batcher

    def instruction(self, name: str | None, instruction: str | None, *, param: str) -> str:
        """The instruction a request asks for: its own ``instruction`` field, else a served name."""
        if instruction is not None:
            if not self.config.allow_instruction_field:
                raise ApiError(400, "this server does not take an 'instruction' field", param="instruction")
            if name is not None and self.config.served(str(name)) is None and name != self.config.model:
                raise _unknown_model(name, self.config, param)
            return validate_instruction(instruction, "instruction")
        if name is None:
            raise ApiError(422, f"{param} is required: a served name, or an 'instruction'", param=param)
        served = self.config.served(name)
        if served is None:
            raise _unknown_model(name, self.config, param)
        return served

    async def embed(self, http: Request, request: EmbedRequest, model_name: str | None) -> np.ndarray:
        """``request``'s vectors, unless ``http``'s client disconnects first: then its texts
        leave the queue unembedded (counted as abandoned) and :class:`ClientDisconnect` ends it."""
        _, batcher = self.ready()
        gone = asyncio.ensure_future(_disconnected(http))
        await asyncio.sleep(0)  # a client that already left is seen before anything is queued
        if gone.done():
            self.metrics.abandoned.inc(len(request.texts))
            raise ClientDisconnect
        answer = asyncio.ensure_future(batcher.embed(request))
        try:
            await asyncio.wait({answer, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            answered = answer.done()
            if not answered:
                answer.cancel()  # the batcher skips it; counted there if it had not begun
        if not answered:
            raise ClientDisconnect
        result = answer.result()
        label = "(instruction field)" if model_name is None else str(model_name)
        self.metrics.texts.labels(label).inc(len(request.texts))
        return result.vectors


async def _disconnected(http: Request) -> None:
    """Returns when the client of ``http`` (whose body has been read) disconnects."""
    while (await http.receive())["type"] != "http.disconnect":
        pass


def _unknown_model(name: str, config: ServeConfig, param: str) -> ApiError:
    known = [served for served, _ in config.model_names()]
    return ApiError(
        404, f"the model {name!r} is not served here; served: {known}", param=param, code="model_not_found"
    )


def _match_whole_paths(routes: list[Any]) -> None:
    """End each route's pattern at the path's end: starlette ends them with ``$``, which also
    matches before a final newline, so ``POST /%0A`` was served by ``/`` (and ``GET /info%0A``
    by ``/info``).  ``\\Z`` matches only at the end."""
    for route in routes:
        pattern = route.path_regex
        if pattern.pattern.endswith("$"):
            route.path_regex = re.compile(pattern.pattern[:-1] + r"\Z", pattern.flags)


# The handlers take their state from the app (:func:`server_state`).  They carry comments,
# not docstrings: FastAPI would publish a docstring as the operation's description.


async def openai_embeddings(request: Request) -> JSONResponse:
    # OpenAI's POST /v1/embeddings: the served name in ``model`` (or an ``instruction``).
    state = server_state(request.app)
    body = parse_body(OpenAIEmbeddingRequest, await _json_object(request))
    engine, batcher = state.ready()
    texts = _openai_input(body.input, state.config.max_inputs)
    instruction = state.instruction(body.model, body.instruction, param="model")
    if body.dimensions is not None and body.dimensions != engine.dim:
        raise ApiError(
            422,
            f"this model's vectors have {engine.dim} dimensions, not {body.dimensions!r}",
            param="dimensions",
        )
    embed = await batcher.encode(texts, instruction, argument="input")
    vectors = await state.embed(request, embed, body.model)
    data = [
        OpenAIEmbedding(index=index, embedding=_encoded(vector, body.encoding_format))
        for index, vector in enumerate(vectors)
    ]
    # Always name what produced the vectors: the served name, else the model itself.
    model = body.model if body.model is not None else engine.model_name
    tokens = embed.prompts.tokens
    return _json(
        OpenAIEmbeddingResponse(
            data=data, model=model, usage=Usage(prompt_tokens=tokens, total_tokens=tokens)
        )
    )


async def openai_models(request: Request) -> JSONResponse:
    state = server_state(request.app)
    engine, _ = state.ready()
    data = [
        ModelCard(id=name, instruction=instruction, dim=engine.dim, fingerprint=engine.fingerprint)
        for name, instruction in state.config.model_names()
    ]
    return _json(ModelList(data=data))


async def tei_embed(request: Request) -> JSONResponse:
    # TEI's POST /embed (and /, /<name>/embed, /<name>): the served name by path or prompt_name.
    state, config = server_state(request.app), server_state(request.app).config
    body = parse_body(TEIEmbedRequest, await _json_object(request))
    engine, batcher = state.ready()
    texts = [body.inputs] if isinstance(body.inputs, str) else body.inputs
    if isinstance(texts, list) and not texts:
        raise ApiError(422, "inputs must not be empty", param="inputs")
    _check_count(texts, config.max_inputs, "inputs")
    name = _tei_name(request, body, config)
    instruction = state.instruction(name, body.instruction, param="prompt_name")
    embed = await batcher.encode(texts, instruction, argument="inputs", normalize=body.normalize)
    truncate = config.auto_truncate if body.truncate is None else body.truncate
    if not truncate and any(embed.prompts.truncated):
        index = embed.prompts.truncated.index(True)
        raise TextTooLongError(index, len(embed.prompts.ids[index]), engine.max_length)
    vectors = await state.embed(request, embed, name)
    return JSONResponse(vectors.tolist())


async def health(request: Request) -> JSONResponse:
    server_state(request.app).ready()
    return _json(HealthResponse())


async def info(request: Request) -> JSONResponse:
    state = server_state(request.app)
    config, (engine, _) = state.config, state.ready()
    return _json(
        InfoResponse(
            model_id=engine.model_name,
            model_dtype=engine.dtype,
            model_type={"embedding": {}},
            max_input_length=engine.max_length,
            max_batch_tokens=engine.max_batch_tokens,
            max_client_batch_size=config.max_inputs,
            max_batch_requests=config.max_batch_texts,
            max_concurrent_requests=config.max_queue,
            auto_truncate=config.auto_truncate,
            version=__version__,
            dim=engine.dim,
            device=engine.device,
            fingerprint=engine.fingerprint,
            pid=os.getpid(),
            instructions=dict(config.model_names()),
        )
    )


async def metrics(request: Request) -> Response:
    return Response(server_state(request.app).metrics.exposition(), media_type=CONTENT_TYPE)


_PROMETHEUS = {
    "description": "Prometheus' text format",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
#: Every route, in order: (path, method, handler, what its 200 answers).  A method each, so
#: that every operation has its own id in /openapi.json.
_ROUTES: tuple[tuple[str, str, Any, Any], ...] = (
    ("/v1/embeddings", "POST", openai_embeddings, OpenAIEmbeddingResponse),
    ("/v1/models", "GET", openai_models, ModelList),
    *((path, "POST", tei_embed, list[list[float]]) for path in _TEI_PATHS),
    ("/health", "GET", health, HealthResponse),
    ("/health", "HEAD", health, HealthResponse),
    ("/info", "GET", info, InfoResponse),
)


def _add_routes(app: FastAPI) -> None:
    """The API's routes; each 200's schema is declared here, the rest of the document is
    :mod:`.openapi`'s (bodies are parsed by hand, so a body nested too deep gets its own
    400, not a 500)."""
    for path, method, handler, answer in _ROUTES:
        app.add_api_route(path, handler, methods=[method], responses={200: {"model": answer}})
    app.add_api_route(
        "/metrics", metrics, methods=["GET"], response_class=Response, responses={200: _PROMETHEUS}
    )


def _json(model: Any) -> JSONResponse:
    return JSONResponse(model.model_dump(mode="json"))


def _add_error_handlers(app: FastAPI) -> None:
    def handler(status: int, kind: str, headers: dict[str, str] | None = None) -> Any:
        """The response of a package error raised while serving: ``status``, with its message."""

        async def respond(request: Request, exc: Exception) -> Response:
            return ApiError(status, str(exc), kind, headers=headers).response(request.url.path)

        return respond

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response(request.url.path)

    async def no_route(request: Request, exc: Exception) -> Response:
        """starlette's 404 (no route) and 405 (another method's route), in the API's shape."""
        assert isinstance(exc, HTTPException)
        path, method = request.scope["path"], request.method  # url.path drops a newline
        headers = dict(exc.headers or {})
        allowed = headers.get("Allow")
        message = f"{path!r} answers {allowed}, not {method}" if allowed else f"no endpoint at {path!r}"
        return ApiError(exc.status_code, message, headers=headers or None).response(path)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, no_route)
    app.add_exception_handler(TextTooLongError, handler(413, "invalid_request_error"))
    app.add_exception_handler(InvalidTypeError, handler(422, "invalid_request_error"))
    app.add_exception_handler(InvalidArgumentError, handler(400, "invalid_request_error"))
    busy = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    app.add_exception_handler(QueueFullError, handler(503, "server_overloaded", busy))
    app.add_exception_handler(ServerClosingError, handler(503, "server_error", busy))
    app.add_exception_handler(InternalServerError, handler(500, "server_error"))


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply to be parsed") from None
    except ValueError as exc:  # not JSON, not UTF-8, or an integer past Python's digit limit
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(422, f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _tei_name(request: Request, body: TEIEmbedRequest, config: ServeConfig) -> str:
    """The served name a TEI request asks for: its path's (``/<name>/embed``), else its
    ``prompt_name``, else the first served one.  Only a missing ``prompt_name`` (or null)
    means the default: ``""``, ``0`` or ``false`` are names that are not served."""
    if "name" in request.path_params:
        return str(request.path_params["name"])
    return config.instructions[0].name if body.prompt_name is None else body.prompt_name


def _openai_input(value: Any, max_inputs: int) -> Any:
    """OpenAI's ``input`` as a list (its texts are checked as they are tokenised).  Token-id
    arrays are refused: they come from another model's tokenizer, and embedding them would
    embed the wrong text."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(_token_ids(item) for item in value):
        raise ApiError(
            400,
            "input holds token ids; this server embeds text with its own tokenizer, so ids from "
            "another tokenizer (tiktoken) would embed the wrong text. Send the strings instead; "
            "langchain-openai: OpenAIEmbeddings(..., check_embedding_ctx_length=False)",
            param="input",
            code="token_ids_not_supported",
        )
    if isinstance(value, list) and not value:
        raise ApiError(400, "input must not be empty", param="input")
    if value is None:
        raise ApiError(422, "input is required: a string or a list of strings", param="input")
    if isinstance(value, list):
        _check_count(value, max_inputs, "input")
    return value


def _token_ids(item: Any) -> bool:
    if isinstance(item, int) and not isinstance(item, bool):
        return True
    return isinstance(item, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in item)


def _check_count(texts: Any, max_inputs: int, param: str) -> None:
    if isinstance(texts, list) and len(texts) > max_inputs:
        raise ApiError(
            413,
            f"{param} holds {len(texts)} texts; this server takes at most {max_inputs} per request",
            param=param,
        )


def _encoded(vector: np.ndarray, encoding: str) -> list[float] | str:
    """OpenAI's two encodings: a list of floats, or base64 of little-endian float32 bytes."""
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()
