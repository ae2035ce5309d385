"""What every embedder shares: the frameworks' list forms, the cache namespaces, and the check
every vector passes on its way out.

The two embedders, an engine's (:class:`~inbedder_integrations.local.InstructedEmbedder`) and
a server's (:class:`~inbedder_integrations.remote.RemoteEmbedder`), are siblings that derive
from :class:`BaseEmbedder`: each gives its array methods and its identity, and the base makes
the rest.  Imports only the ground floor (errors, validation, vectors).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import InvalidTypeError
from .validation import validate_unicode
from .vectors import check_vectors

__all__ = ["QUERY_SUFFIX", "BaseEmbedder", "Embedder", "cache_namespace"]

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


@runtime_checkable
class Embedder(Protocol):
    """What the corpus, Chroma, routing and the adapters embed with: documents under one question,
    queries under another, as float32 arrays, in sync and async forms.

    An engine's :class:`~inbedder_integrations.local.InstructedEmbedder` and a server's
    :class:`~inbedder_integrations.remote.RemoteEmbedder` are the two; an
    :class:`~inbedder_integrations.spec.EmbedderSpec` builds either.  ``fingerprint`` names the
    vectors (what a Chroma collection records), ``cache_key`` also how they were computed
    (dtype, device type: what a cache keys them by), ``dim`` their width.
    """

    @property
    def instruction(self) -> str: ...

    @property
    def query_instruction(self) -> str: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def cache_key(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_documents_array(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_queries_array(self, texts: Sequence[str]) -> np.ndarray: ...

    async def aembed_documents_array(self, texts: Sequence[str]) -> np.ndarray: ...

    async def aembed_queries_array(self, texts: Sequence[str]) -> np.ndarray: ...

    def accepts_fingerprint(self, fingerprint: str) -> bool: ...

    def close(self) -> None: ...


def _query_text(text: Any) -> str:
    if not isinstance(text, str):
        raise InvalidTypeError(f"query must be a str, got {type(text).__name__}")
    return validate_unicode(text, "query")


class BaseEmbedder:
    """What both embedders (an engine's in :mod:`.local`, a server's in :mod:`.remote`) derive from their
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

    def accepts_fingerprint(self, fingerprint: str) -> bool:
        raise NotImplementedError

    def close(self) -> None:
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

    async def aembed_documents_array(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`embed_documents_array` without blocking the event loop."""
        return self._checked(await self._adocuments_array(texts), texts, self.instruction)

    async def aembed_queries_array(self, texts: Sequence[str]) -> np.ndarray:
        """:meth:`embed_queries_array` without blocking the event loop."""
        return self._checked(await self._aqueries_array(texts), texts, self.query_instruction)

    async def aembed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return (await self.aembed_documents_array(texts)).tolist()

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_queries_array([_query_text(text)]))[0].tolist()

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
