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
from typing import Any

import numpy as np

from .engine import InBedder
from .engine.prompting import validate_instruction, validate_unicode
from .errors import InvalidTypeError, MissingExtraError

__all__ = ["InstructedEmbedder", "missing_extra"]


def missing_extra(extra: str, package: str) -> MissingExtraError:
    """The error raised when an optional dependency (an extra) is not installed (an ImportError)."""
    return MissingExtraError(
        f"This feature needs '{package}', which is not installed. Install it with:\n"
        f"    pip install 'inbedder-integrations[{extra}]'"
    )


@dataclass(frozen=True)
class InstructedEmbedder:
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

    def embed_documents_array(self, texts: Sequence[str]) -> np.ndarray:
        return self.engine.embed(
            texts,
            self.instruction,
            normalize=self.normalize,
            batch_size=self.batch_size,
            show_progress=self.show_progress,
        )

    def embed_queries_array(self, texts: Sequence[str]) -> np.ndarray:
        return self.engine.embed(
            texts, self.query_instruction, normalize=self.normalize, batch_size=self.batch_size
        )

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Python floats, as LangChain and LlamaIndex expect."""
        return self.embed_documents_array(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        if not isinstance(text, str):
            raise InvalidTypeError(f"query must be a str, got {type(text).__name__}")
        validate_unicode(text, "query")
        return self.embed_queries_array([text])[0].tolist()

    async def aembed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Runs in a worker thread so the event loop keeps serving other tasks."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)

    @property
    def cache_namespace(self) -> str:
        """A key for text-keyed caches of *document* vectors: everything that shapes them.

        LangChain's ``CacheBackedEmbeddings`` and LlamaIndex's embedding cache key on
        the text alone; without this namespace they would serve a vector computed
        under another instruction, by another model, in another dtype or on another
        kind of device (like the engine's own cache: :attr:`InBedder.cache_key`), or
        normalised differently.
        """
        instructions = json.dumps([self.instruction, self.query_instruction])
        digest = hashlib.sha256(instructions.encode()).hexdigest()[:16]
        return f"inbedder:{self.engine.cache_key}:{digest}" + ("" if self.normalize else ":raw")

    @property
    def query_cache_namespace(self) -> str:
        """The namespace for cached *query* vectors: the documents' one when both are asked
        the same question (the vectors are the same), a separate one when they are not."""
        if self.query_instruction == self.instruction:
            return self.cache_namespace
        return self.cache_namespace + ":query"
