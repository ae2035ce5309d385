"""An engine bound to a document instruction and a query instruction: the in-process embedder.

Its sibling :class:`~inbedder_integrations.remote.RemoteEmbedder` embeds through a server;
:func:`~inbedder_integrations.instructed.build_embedder` picks one of them for an adapter.
Importing this module imports no torch: the engine loads when :meth:`InstructedEmbedder.create`
builds one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .embedder import BaseEmbedder
from .validation import validate_instruction

if TYPE_CHECKING:
    from .engine import InBedder

__all__ = ["InstructedEmbedder", "load_engine"]


def load_engine(model: str, options: Mapping[str, Any] | None = None) -> InBedder:
    """An engine of its own for ``model`` with ``options`` (``from_pretrained``'s), on the
    process's shared model: closing it (or another holder's) never breaks another holder; the
    model goes when its last engine closes.  The one place outside the engine that builds one
    from a model name (:class:`~inbedder_integrations.spec.EmbedderSpec` goes through it)."""
    from .engine import InBedder  # here: importing this module (and the adapters') loads no torch

    return InBedder.from_pretrained(model, **dict(options or {}))


@dataclass(frozen=True)
class InstructedEmbedder(BaseEmbedder):
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
        return cls(
            load_engine(model, model_kwargs),
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
