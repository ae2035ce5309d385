"""Model loading, prompting, pooling and batching; nothing here knows any vector store."""

from .engine import EngineClosedError, InBedder
from .loading import KNOWN_CHECKPOINTS, cache_root
from .pooling import POOLING_MODES
from .prompting import DEFAULT_TEMPLATE
from .settings import EmbeddingSettings

__all__ = [
    "DEFAULT_TEMPLATE",
    "KNOWN_CHECKPOINTS",
    "POOLING_MODES",
    "EmbeddingSettings",
    "EngineClosedError",
    "InBedder",
    "cache_root",
]
