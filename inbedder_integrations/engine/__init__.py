"""Model loading, prompting, pooling and batching; nothing here knows any vector store."""

from .checkpoints import KNOWN_CHECKPOINTS, CheckpointSpec
from .digests import cache_root
from .engine import EngineClosedError, InBedder
from .pooling import POOLING_MODES
from .prompting import DEFAULT_TEMPLATE
from .settings import EmbeddingSettings

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
