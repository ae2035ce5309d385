"""Model loading, prompting, pooling and batching; nothing here knows any vector store."""

from .engine import InBedder
from .loading import KNOWN_CHECKPOINTS, cache_root
from .pooling import POOLING_MODES
from .prompting import DEFAULT_TEMPLATE

__all__ = ["DEFAULT_TEMPLATE", "KNOWN_CHECKPOINTS", "POOLING_MODES", "InBedder", "cache_root"]
