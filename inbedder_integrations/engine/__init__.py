"""Model loading, prompting, pooling and batching; nothing here knows any vector store.

Names load lazily (PEP 562), so that importing a torch-free part (``engine.digests``,
``engine.settings``) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checkpoints import KNOWN_CHECKPOINTS, CheckpointSpec
    from .digests import cache_root
    from .engine import EngineClosedError, InBedder
    from .prompting import DEFAULT_TEMPLATE
    from .settings import POOLING_MODES, EmbeddingSettings

_HOMES = {
    "DEFAULT_TEMPLATE": ".prompting",
    "KNOWN_CHECKPOINTS": ".checkpoints",
    "POOLING_MODES": ".settings",
    "CheckpointSpec": ".checkpoints",
    "EmbeddingSettings": ".settings",
    "EngineClosedError": ".engine",
    "InBedder": ".engine",
    "cache_root": ".digests",
}

__all__ = [
    "DEFAULT_TEMPLATE",
    "KNOWN_CHECKPOINTS",
    "POOLING_MODES",
    "CheckpointSpec",
    "EmbeddingSettings",
    "EngineClosedError",
    "InBedder",
    "cache_root",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name], __name__), name)
    globals()[name] = value
    return value
