"""An engine bound to a document instruction and a query instruction.

This is all the LangChain, LlamaIndex and Chroma adapters share: each one is a
thin translation of its framework's calls into an :class:`InstructedEmbedder`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidArgumentError, InvalidTypeError, missing_extra
from .validation import validate_instruction, validate_unicode
from .vectors import check_vectors

if TYPE_CHECKING:
    from .engine import InBedder
    from .remote import RemoteEmbedder

__all__ = ["QUERY_SUFFIX", "InstructedEmbedder", "build_embedder", "cache_namespace", "missing_extra"]

#: ``<name>:query`` names the query instruction of a served entry ``<name>`` (``inbedder serve``).
QUERY_SUFFIX = ":query"


def cache_namespace(cache_key: str, instruction: str, query_instruction: str, normalize: bool) -> str:
    """A key for text-keyed caches of *document* vectors: everything that shapes them.

    LangChain's ``CacheBackedEmbeddings`` and LlamaIndex's embedding cache key on
    the text alone; without this namespace they would serve a vector computed
    under another instruction, by another model, in another dtype or on another
    kind of device (``cache_key``, as :attr:`InBedder.cache_key` has them), or
    normalised differently.
    """
    instructions = json.dumps([instruction, query_instruction])
    digest = hashlib.sha256(instructions.encode()).hexdigest()[:16]
    return f"inbedder:{cache_key}:{digest}" + ("" if normalize else ":raw")


def _query_text(text: Any) -> str:
    if not isinstance(text, str):
        raise InvalidTypeError(f"query must be a str, got {type(text).__name__}")
    return validate_unicode(text, "query")


class _Embedder:
    """What both embedders (an engine's here, a server's in :mod:`.remote`) derive from their
    array methods and their identity: the frameworks' list forms, the cache namespaces, and
    the check every vector passes on its way out (:func:`~inbedder_integrations.vectors.check_vectors`)."""

    instruction: str
    query_instruction: str
    normalize: bool

    @property
    def cache_key(self) -> str:
        raise NotImplementedError

    @property
    def dim(self) -> int:
        raise NotImplementedError

    @property
    def source(self) -> str:
        """Who computes the vectors, as an error names it."""
        raise NotImplementedError

    def _documents_array(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def _queries_array(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    async def _adocuments_array(self, texts: Sequence[str]) -> np.ndarray:
        """In a worker thread, so the event loop keeps serving other tasks."""
        return await asyncio.to_thread(self._documents_array, texts)

    async def _aqueries_array(self, texts: Sequence[str]) -> np.ndarray:
        return await asyncio.to_thread(self._queries_array, texts)

    def _checked(self, vectors: np.ndarray, texts: Sequence[str], instruction: str) -> np.ndarray:
        source = f"{self.source} under {instruction!r}"
        return check_vectors(vectors, rows=len(texts), dim=self.dim, normalized=self.normalize, source=source)

    def embed_documents_array(self, texts: Sequence[str]) -> np.ndarray:
        """Float32 rows, one per text, under the document instruction."""
        return self._checked(self._documents_array(texts), texts, self.instruction)

    def embed_queries_array(self, texts: Sequence[str]) -> np.ndarray:
        """Float32 rows, one per text, under the query instruction."""
        return self._checked(self._queries_array(texts), texts, self.query_instruction)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Python floats, as LangChain and LlamaIndex expect."""
        return self.embed_documents_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries_array([_query_text(text)])[0].tolist()

    async def aembed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = await self._adocuments_array(texts)
        return self._checked(vectors, texts, self.instruction).tolist()

    async def aembed_query(self, text: str) -> list[float]:
        texts = [_query_text(text)]
        return self._checked(await self._aqueries_array(texts), texts, self.query_instruction)[0].tolist()

    @property
    def cache_namespace(self) -> str:
        """See :func:`cache_namespace`."""
        return cache_namespace(self.cache_key, self.instruction, self.query_instruction, self.normalize)

    @property
    def query_cache_namespace(self) -> str:
        """The namespace for cached *query* vectors: the documents' one when both are asked
        the same question (the vectors are the same), a separate one when they are not."""
        if self.query_instruction == self.instruction:
            return self.cache_namespace
        return self.cache_namespace + ":query"


@dataclass(frozen=True)
class InstructedEmbedder(_Embedder):
    """Documents are embedded under ``instruction``, queries under ``query_instruction``."""

    engine: InBedder
    instruction: str
    query_instruction: str
    batch_size: int | None = None
    normalize: bool = True
    show_progress: bool = False

    @classmethod
    def create(
        cls,
        *,
        model: str,
        instruction: str,
        query_instruction: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        batch_size: int | None = None,
        normalize: bool = True,
        show_progress: bool = False,
    ) -> InstructedEmbedder:
        instruction = validate_instruction(instruction)
        query_instruction = validate_instruction(
            instruction if query_instruction is None else query_instruction, "query_instruction"
        )
        from .engine import InBedder  # here: the serve CLI reads QUERY_SUFFIX without torch

        # An engine of its own, on the process's shared model: closing it (or another
        # adapter's) never breaks another holder; the model goes when its last engine closes.
        return cls(
            InBedder.from_pretrained(model, **dict(model_kwargs or {})),
            instruction,
            query_instruction,
            batch_size,
            normalize,
            show_progress,
        )

    def close(self) -> None:
        """Close this embedder's own engine; other adapters on the same model keep working."""
        self.engine.close()

    def _documents_array(self, texts: Sequence[str]) -> np.ndarray:
        return self.engine.embed(
            texts,
            self.instruction,
            normalize=self.normalize,
            batch_size=self.batch_size,
            show_progress=self.show_progress,
        )

    def _queries_array(self, texts: Sequence[str]) -> np.ndarray:
        return self.engine.embed(
            texts, self.query_instruction, normalize=self.normalize, batch_size=self.batch_size
        )

    @property
    def source(self) -> str:
        return self.engine.model_name

    @property
    def fingerprint(self) -> str:
        return self.engine.fingerprint

    @property
    def dim(self) -> int:
        return self.engine.dim

    def accepts_fingerprint(self, fingerprint: str) -> bool:
        return self.engine.accepts_fingerprint(fingerprint)

    @property
    def cache_key(self) -> str:
        return self.engine.cache_key


def build_embedder(
    *,
    server_url: str | None,
    served_name: str | None,
    api_key: str | None,
    model: str,
    instruction: str | None,
    query_instruction: str | None,
    model_kwargs: dict[str, Any] | None,
    batch_size: int | None,
    normalize: bool,
    show_progress: bool = False,
) -> InstructedEmbedder | RemoteEmbedder:
    """What an adapter embeds with: a local engine, or an ``inbedder serve`` URL (``server_url``
    and ``served_name``), whose instructions must agree with any given here."""
    if server_url is None:
        if served_name is not None or api_key is not None:
            raise InvalidArgumentError("served_name and api_key need server_url (see from_server)")
        if instruction is None:
            raise InvalidArgumentError("instruction is required: the question asked of every document")
        return InstructedEmbedder.create(
            model=model,
            instruction=instruction,
            query_instruction=query_instruction,
            model_kwargs=model_kwargs,
            batch_size=batch_size,
            normalize=normalize,
            show_progress=show_progress,
        )
    if served_name is None:
        raise InvalidArgumentError("server_url needs served_name: the name the server serves")
    from .remote import RemoteEmbedder

    chunk = batch_size or RemoteEmbedder.batch_size
    remote = RemoteEmbedder(server_url, served_name, api_key, batch_size=chunk, normalize=normalize)
    for field, given, served in (
        ("instruction", instruction, remote.instruction),
        ("query_instruction", query_instruction, remote.query_instruction),
    ):
        if given is not None and given != served:
            raise InvalidArgumentError(
                f"{field}={given!r}, but {server_url} serves {served_name!r} with {field}={served!r}"
            )
    return remote
