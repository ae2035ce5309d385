"""An ``inbedder serve`` endpoint as an embedder: what the adapters' ``from_server`` use.

Plain OpenAI or TEI clients send one model name for documents and queries alike,
so a served query instruction never reaches them.  :class:`RemoteEmbedder` asks
for documents under the served name and for queries under ``<name>:query``,
in chunks, retrying a server that is busy (503 with ``Retry-After``) or briefly
unreachable, and reads what the vectors are (instructions, fingerprint, width,
dtype) from the server itself, so caches and Chroma collections key them as
they key in-process vectors.

A server's answer is another party's data: every chunk must hold one finite row of
the served width per text sent (unit length when asked for), in a body of bounded
size, or the call fails and nothing is returned.  Every call has one deadline for
all of its tries, waits and reads, and a busy server's ``Retry-After`` is honoured
only up to a cap.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import numpy as np

from .embedder import QUERY_SUFFIX, BaseEmbedder
from .errors import InBedderError, InvalidArgumentError, MissingError, VectorError, positive_int
from .retry import Backoff
from .validation import validate_texts
from .vectors import check_vectors

__all__ = ["RemoteEmbedder", "ServerError", "served_name_for"]
_RETRIED_STATUSES = (502, 503, 504)
#: The most bytes a description (``/v1/models``, ``/info``) may take.
_DESCRIPTION_BYTES = 1 << 20
#: Bytes an embedding answer may take per number, and in all besides them: far above what a
#: JSON float needs (``-1.2345678901234567e-05,`` is 24), far below what could exhaust memory.
_BYTES_PER_NUMBER, _BYTES_BESIDES = 32, 1 << 16
#: Requests of one call in flight at once (the server batches across clients on its side).
_IN_FLIGHT = 4
#: Seconds before the second try of a request, doubled before each next one up to the second.
_FIRST_DELAY, _MAX_DELAY = 0.5, 8.0
T = TypeVar("T")


class ServerError(InBedderError, RuntimeError):
    """The server refused a request (its message included), stayed unreachable, ran past the
    call's deadline, or answered something that is not what it should be."""


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: httpx.Headers
    body: bytes
    url: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ServerError(f"{self.url} answered {self.status} with a body that is not JSON") from exc


@dataclass(frozen=True)
class _Transport:
    """One server's requests: a deadline per call, capped bodies, retries on :mod:`.retry`'s schedule."""

    base_url: str
    api_key: str | None
    timeout: float
    backoff: Backoff
    max_retry_after: float

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` to the end from synchronous code, inside a running loop too."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coroutine)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coroutine).result()

    async def within_deadline(self, coroutine: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(coroutine, self.timeout)
        except asyncio.TimeoutError:
            raise ServerError(f"{self.base_url} did not finish answering within {self.timeout:g} s") from None

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)

    async def get_json(self, path: str) -> Any:
        async with self.client() as client:
            request = {"method": "GET", "url": self.base_url + path}
            return (await self.within_deadline(self.send(client, request, _DESCRIPTION_BYTES))).json()

    async def send(self, client: httpx.AsyncClient, request: dict[str, Any], cap: int) -> _Answer:
        """The answer to ``request``, retried while the server is busy or unreachable."""
        for attempt, delay in self.backoff.tries():
            try:
                result: _Answer | httpx.TransportError = await self._read(client, request, cap)
            except httpx.TransportError as exc:
                result = exc
            answer, wait = self._settle(attempt, result, delay)
            if answer is not None:
                return answer
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _read(self, client: httpx.AsyncClient, request: dict[str, Any], cap: int) -> _Answer:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        async with client.stream(**request, headers=headers) as response:
            url = str(response.request.url)
            declared = response.headers.get("Content-Length", "0")
            if declared.isdigit() and int(declared) > cap:
                raise ServerError(f"{url} answered {declared} bytes, more than the {cap} this call allows")
            body = bytearray()
            async for piece in response.aiter_bytes():
                body += piece
                if len(body) > cap:
                    raise ServerError(f"{url} answered more than the {cap} bytes this call allows")
            return _Answer(response.status_code, response.headers, bytes(body), url)

    def _settle(
        self, attempt: int, result: _Answer | httpx.TransportError, delay: float
    ) -> tuple[_Answer | None, float]:
        """The answer to return, or None and how long to wait before the next try (a busy
        server's ``Retry-After``, capped); raises once the tries are spent or the server said no."""
        last = attempt == self.backoff.attempts
        if isinstance(result, httpx.TransportError):
            if last:
                message = f"{self.base_url} did not answer after {attempt} tries: {result}"
                raise ServerError(message) from result
            return None, delay
        if result.status not in _RETRIED_STATUSES or last:
            return _checked(result), 0.0
        return None, retry_after(result.headers.get("Retry-After"), delay, self.max_retry_after)


@dataclass
class RemoteEmbedder(BaseEmbedder):
    """Documents under ``name``, queries under ``name:query``, embedded by a server at ``base_url``."""

    base_url: str
    name: str
    api_key: str | None = field(default=None, repr=False)
    batch_size: int = 64
    """Texts per request (the server batches across clients on its side)."""
    normalize: bool = True
    timeout: float = 300.0
    """Seconds one call may take in all: its tries, waits and reads (a server that answers a
    byte at a time cannot hold it longer)."""
    attempts: int = 6
    """Tries per request when the server answers 502/503/504 or cannot be reached."""
    max_retry_after: float = 30.0
    """The longest wait a busy server's ``Retry-After`` gets; a longer or non-finite one is cut to it."""
    instruction: str = field(init=False)
    query_instruction: str = field(init=False)
    model: str = field(init=False)
    """The served model's name, as ``/info`` gives it."""
    fingerprint: str = field(init=False)
    _dim: int = field(init=False, repr=False)
    _cache_key: str = field(init=False, repr=False)
    _transport: _Transport = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if not isinstance(self.name, str) or not self.name or self.name.endswith(QUERY_SUFFIX):
            raise InvalidArgumentError(
                f"name must be a served name without {QUERY_SUFFIX!r}, got {self.name!r}"
            )
        positive_int("batch_size", self.batch_size)
        positive_int("attempts", self.attempts)
        for name in ("timeout", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise InvalidArgumentError(f"{name} must be a positive finite number of seconds: {value!r}")
        self.base_url = self.base_url.rstrip("/").removesuffix("/v1")
        backoff = Backoff(self.attempts, _FIRST_DELAY, _MAX_DELAY)
        self._transport = _Transport(
            self.base_url, self.api_key, float(self.timeout), backoff, float(self.max_retry_after)
        )
        self._describe()

    # ------------------------------------------------------------------ what the server serves

    def _describe(self) -> None:
        models = _served_models(self._transport.run(self._transport.get_json("/v1/models")), self.base_url)
        if self.name not in models:
            served = sorted(name for name in models if not name.endswith(QUERY_SUFFIX))
            raise MissingError(f"{self.base_url} serves no {self.name!r}; it serves {served}")
        entry = models[self.name]
        query = models.get(self.name + QUERY_SUFFIX, entry)
        info = _fields(self._transport.run(self._transport.get_json("/info")), self.base_url + "/info")
        self.model = _text(info, "model_id", self.base_url + "/info")
        self.instruction, self.query_instruction = entry["instruction"], query["instruction"]
        self.fingerprint, self._dim = entry["fingerprint"], entry["dim"]
        where = self.base_url + "/info"
        device_type = _text(info, "device", where).partition(":")[0]
        self._cache_key = f"{self.fingerprint}|{_text(info, 'model_dtype', where)}|{device_type}"

    # ------------------------------------------------------------------ embedding

    def _documents_array(self, texts: Sequence[str]) -> np.ndarray:
        return self._transport.run(self._aembed(texts, self.name))

    def _queries_array(self, texts: Sequence[str]) -> np.ndarray:
        return self._transport.run(self._aembed(texts, self.name + QUERY_SUFFIX))

    async def _adocuments_array(self, texts: Sequence[str]) -> np.ndarray:
        return await self._aembed(texts, self.name)

    async def _aqueries_array(self, texts: Sequence[str]) -> np.ndarray:
        return await self._aembed(texts, self.name + QUERY_SUFFIX)

    async def _aembed(self, texts: Sequence[str], name: str) -> np.ndarray:
        texts = validate_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = [texts[start : start + self.batch_size] for start in range(0, len(texts), self.batch_size)]
        slots = asyncio.Semaphore(_IN_FLIGHT)
        async with self._transport.client() as client:

            async def one(chunk: list[str]) -> np.ndarray:
                async with slots:
                    answer = await self._transport.send(client, self._request(chunk, name), self._cap(chunk))
                return self._rows(answer, len(chunk), name)

            parts = await self._transport.within_deadline(asyncio.gather(*(one(chunk) for chunk in chunks)))
        return np.concatenate(parts)

    def _request(self, chunk: list[str], name: str) -> dict[str, Any]:
        """TEI's route: it takes ``normalize`` and cuts long texts' ends, as the engine does."""
        body = {"inputs": chunk, "prompt_name": name, "normalize": self.normalize, "truncate": True}
        return {"method": "POST", "url": self.base_url + "/embed", "json": body}

    def _cap(self, chunk: list[str]) -> int:
        return _BYTES_BESIDES + len(chunk) * self.dim * _BYTES_PER_NUMBER

    def _rows(self, answer: _Answer, sent: int, name: str) -> np.ndarray:
        """One chunk's rows, in the order of its texts, if they are what was asked for."""
        payload = answer.json()
        source = f"{answer.url} ({name!r})"
        if not isinstance(payload, list) or len(payload) != sent:
            count = len(payload) if isinstance(payload, list) else type(payload).__name__
            raise VectorError(f"{source} answered {count} rows for {sent} texts")
        try:
            rows = np.array(payload)
        except ValueError:
            raise VectorError(f"{source} answered rows of unequal width") from None
        return check_vectors(rows, rows=sent, dim=self.dim, normalized=self.normalize, source=source)

    # ------------------------------------------------------------------ what adapters share

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def source(self) -> str:
        return f"{self.base_url} ({self.name!r})"

    @property
    def cache_key(self) -> str:
        """The server's fingerprint, dtype and device type, as :attr:`InBedder.cache_key` has them."""
        return self._cache_key

    def accepts_fingerprint(self, fingerprint: str) -> bool:
        """Whether vectors of ``fingerprint`` are this server's (its current format only)."""
        return fingerprint == self.fingerprint

    def close(self) -> None:
        """Nothing to release: each call opens and closes its own connection pool."""


def served_name_for(base_url: str, instruction: str, api_key: str | None = None, timeout: float = 30) -> str:
    """The name under which the server at ``base_url`` serves ``instruction`` for documents
    (a collection records its instruction, not the name a server gives it)."""
    base_url = base_url.rstrip("/").removesuffix("/v1")
    transport = _Transport(base_url, api_key, float(timeout), Backoff(1, _FIRST_DELAY, _MAX_DELAY), 0.0)
    served = {
        name: entry["instruction"]
        for name, entry in _served_models(transport.run(transport.get_json("/v1/models")), base_url).items()
    }
    for name, question in served.items():
        if question == instruction and not name.endswith(QUERY_SUFFIX):
            return name
    raise MissingError(
        f"{base_url} serves no name for {instruction!r}; it serves "
        + ", ".join(f"{name}={question!r}" for name, question in served.items())
        + " (start it with --instruction NAME=QUESTION)"
    )


def retry_after(header: str | None, default: float, cap: float) -> float:
    """Seconds to wait before the next try: the server's ``Retry-After`` (seconds) where it is a
    finite number, never below 0 or above ``cap``; ``default`` (capped too) where it is not."""
    try:
        seconds = float(header) if header is not None else default
    except ValueError:
        seconds = default
    if not math.isfinite(seconds):
        seconds = cap
    return min(max(seconds, 0.0), cap)


def _served_models(payload: Any, base_url: str) -> dict[str, dict[str, Any]]:
    """``/v1/models``' entries by name, each with a str instruction and fingerprint and an int dim."""
    where = base_url + "/v1/models"
    data = _fields(payload, where).get("data")
    if not isinstance(data, list):
        raise ServerError(f"{where} answered without a list of models")
    models: dict[str, dict[str, Any]] = {}
    for entry in data:
        entry = _fields(entry, where)
        name = _text(entry, "id", where)
        for key in ("instruction", "fingerprint"):
            _text(entry, key, f"{where} ({name!r})")
        dim = entry.get("dim")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ServerError(f"{where} gives {name!r} a width of {dim!r}, not a positive int")
        models[name] = entry
    return models


def _fields(payload: Any, where: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ServerError(f"{where} answered a JSON {type(payload).__name__}, not an object")
    return payload


def _text(payload: dict[str, Any], key: str, where: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise ServerError(f"{where} answered {key}={value!r}, not a non-empty string")
    return value


def _checked(answer: _Answer) -> _Answer:
    if 200 <= answer.status < 300:
        return answer
    try:
        error = json.loads(answer.body).get("error")
        message = error["message"] if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError, KeyError, TypeError):
        message = answer.body[:500].decode("utf-8", "replace")
    raise ServerError(f"{answer.url} answered {answer.status}: {message}")
