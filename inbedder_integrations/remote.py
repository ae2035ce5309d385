"""An ``inbedder serve`` endpoint as an embedder: what the adapters' ``from_server`` use.

Plain OpenAI or TEI clients send one model name for documents and queries alike,
so a served query instruction never reaches them.  :class:`RemoteEmbedder` asks
for documents under the served name and for queries under ``<name>:query``,
in chunks, retrying a server that is busy (503 with ``Retry-After``) or briefly
unreachable, and reads what the vectors are (instructions, fingerprint, width,
dtype) from the server itself, so caches and Chroma collections key them as
they key in-process vectors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from .engine.prompting import validate_texts
from .errors import InBedderError, InvalidArgumentError, InvalidTypeError, MissingError, positive_int
from .instructed import QUERY_SUFFIX, _Embedder

__all__ = ["RemoteEmbedder", "ServerError", "served_name_for"]
_RETRIED_STATUSES = (502, 503, 504)


class ServerError(InBedderError, RuntimeError):
    """The server refused a request (its message included) or stayed unreachable."""


@dataclass
class RemoteEmbedder(_Embedder):
    """Documents under ``name``, queries under ``name:query``, embedded by a server at ``base_url``."""

    base_url: str
    name: str
    api_key: str | None = field(default=None, repr=False)
    batch_size: int = 64
    """Texts per request (the server batches across clients on its side)."""
    normalize: bool = True
    timeout: float = 300.0
    attempts: int = 6
    """Tries per request when the server answers 502/503/504 or cannot be reached."""
    instruction: str = field(init=False)
    query_instruction: str = field(init=False)
    model: str = field(init=False)
    """The served model's name, as ``/info`` gives it."""
    fingerprint: str = field(init=False)
    dim: int = field(init=False)
    _cache_key: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        if not isinstance(self.name, str) or not self.name or self.name.endswith(QUERY_SUFFIX):
            raise InvalidArgumentError(
                f"name must be a served name without {QUERY_SUFFIX!r}, got {self.name!r}"
            )
        positive_int("batch_size", self.batch_size)
        positive_int("attempts", self.attempts)
        self.base_url = self.base_url.rstrip("/").removesuffix("/v1")
        self._describe()

    # ------------------------------------------------------------------ what the server serves

    def _describe(self) -> None:
        models = {entry["id"]: entry for entry in self._get("/v1/models")["data"]}
        if self.name not in models:
            served = sorted(name for name in models if not name.endswith(QUERY_SUFFIX))
            raise MissingError(f"{self.base_url} serves no {self.name!r}; it serves {served}")
        entry = models[self.name]
        query = models.get(self.name + QUERY_SUFFIX, entry)
        info = self._get("/info")
        self.model = str(info["model_id"])
        self.instruction, self.query_instruction = entry["instruction"], query["instruction"]
        self.fingerprint, self.dim = entry["fingerprint"], int(entry["dim"])
        device_type = str(info["device"]).partition(":")[0]
        self._cache_key = f"{self.fingerprint}|{info['model_dtype']}|{device_type}"

    def _get(self, path: str) -> dict[str, Any]:
        response = self._send(lambda client: client.get(self.base_url + path, headers=self._headers()))
        return response.json()

    # ------------------------------------------------------------------ embedding

    def embed_documents_array(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self.name)

    def embed_queries_array(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, self.name + QUERY_SUFFIX)

    async def aembed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return (await self._aembed(texts, self.name)).tolist()

    async def aembed_query(self, text: str) -> list[float]:
        if not isinstance(text, str):
            raise InvalidTypeError(f"query must be a str, got {type(text).__name__}")
        return (await self._aembed([text], self.name + QUERY_SUFFIX))[0].tolist()

    def _embed(self, texts: Sequence[str], name: str) -> np.ndarray:
        texts = validate_texts(texts)
        parts = [
            self._send(lambda client, chunk=chunk: client.post(**self._request(chunk, name)))
            for chunk in self._chunks(texts)
        ]
        return self._stacked(parts)

    async def _aembed(self, texts: Sequence[str], name: str) -> np.ndarray:
        texts = validate_texts(texts)
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            parts = await asyncio.gather(
                *(self._asend(client, self._request(chunk, name)) for chunk in self._chunks(texts))
            )
        return self._stacked(list(parts))

    def _chunks(self, texts: list[str]) -> list[list[str]]:
        return [texts[start : start + self.batch_size] for start in range(0, len(texts), self.batch_size)]

    def _request(self, chunk: list[str], name: str) -> dict[str, Any]:
        """TEI's route: it takes ``normalize`` and cuts long texts' ends, as the engine does."""
        body = {"inputs": chunk, "prompt_name": name, "normalize": self.normalize, "truncate": True}
        return {"url": self.base_url + "/embed", "json": body, "headers": self._headers()}

    def _stacked(self, parts: list[httpx.Response]) -> np.ndarray:
        rows = [row for part in parts for row in part.json()]
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(rows, dtype=np.float32)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    # ------------------------------------------------------------------ transport

    def _send(self, call: Any) -> httpx.Response:
        delay = 0.5
        with httpx.Client(timeout=self.timeout) as client:
            for attempt in range(1, self.attempts + 1):
                try:
                    result: httpx.Response | httpx.TransportError = call(client)
                except httpx.TransportError as exc:
                    result = exc
                response, wait = self._settle(attempt, result, delay)
                if response is not None:
                    return response
                time.sleep(wait)
                delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _asend(self, client: httpx.AsyncClient, request: dict[str, Any]) -> httpx.Response:
        delay = 0.5
        for attempt in range(1, self.attempts + 1):
            try:
                result: httpx.Response | httpx.TransportError = await client.post(**request)
            except httpx.TransportError as exc:
                result = exc
            response, wait = self._settle(attempt, result, delay)
            if response is not None:
                return response
            await asyncio.sleep(wait)
            delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _settle(
        self, attempt: int, result: httpx.Response | httpx.TransportError, delay: float
    ) -> tuple[httpx.Response | None, float]:
        """The response to return, or None and how long to wait before the next try (a busy
        server's ``Retry-After``); raises once the tries are spent or the server said no."""
        last = attempt == self.attempts
        if isinstance(result, httpx.TransportError):
            if last:
                message = f"{self.base_url} did not answer after {attempt} tries: {result}"
                raise ServerError(message) from result
            return None, delay
        if result.status_code not in _RETRIED_STATUSES or last:
            return _checked(result), 0.0
        return None, _retry_after(result, delay)

    # ------------------------------------------------------------------ what adapters share

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
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url.rstrip("/").removesuffix("/v1") + "/v1/models"
    try:
        response = _checked(httpx.get(url, headers=headers, timeout=timeout))
    except httpx.TransportError as exc:
        raise ServerError(f"{url}: {exc}") from exc
    served = {entry["id"]: entry["instruction"] for entry in response.json()["data"]}
    for name, question in served.items():
        if question == instruction and not name.endswith(QUERY_SUFFIX):
            return name
    raise MissingError(
        f"{base_url} serves no name for {instruction!r}; it serves "
        + ", ".join(f"{name}={question!r}" for name, question in served.items())
        + " (start it with --instruction NAME=QUESTION)"
    )


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return max(float(response.headers.get("Retry-After", default)), 0.0)
    except ValueError:
        return default


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    try:
        error = response.json().get("error")
        message = error["message"] if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError, KeyError, TypeError):
        message = response.text[:500]
    raise ServerError(f"{response.request.url} answered {response.status_code}: {message}")
