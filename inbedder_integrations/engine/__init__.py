"""Model loading, prompting, pooling and batching; nothing here knows any vector store.

Names load lazily (:mod:`..lazy`), so that importing a torch-free part (``engine.digests``,
``engine.settings``) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers read; _HOMES below is what runs
    from ..paths import cache_root as cache_root
    from .checkpoints import KNOWN_CHECKPOINTS as KNOWN_CHECKPOINTS
    from .checkpoints import CheckpointSpec as CheckpointSpec
    from .engine import EngineClosedError as EngineClosedError
    from .engine import InBedder as InBedder
    from .prompting import DEFAULT_TEMPLATE as DEFAULT_TEMPLATE
    from .settings import POOLING_MODES as POOLING_MODES
    from .settings import EmbeddingSettings as EmbeddingSettings

#: Each public name, once, under the module that defines it (relative to this package).
_HOMES = {
    "..paths": ("cache_root",),
    ".checkpoints": ("KNOWN_CHECKPOINTS", "CheckpointSpec"),
    ".engine": ("EngineClosedError", "InBedder"),
    ".prompting": ("DEFAULT_TEMPLATE",),
    ".settings": ("POOLING_MODES", "EmbeddingSettings"),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _HOMES)
