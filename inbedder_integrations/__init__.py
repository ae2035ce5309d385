"""Instruction-following InBedder embeddings for LangChain, LlamaIndex and Chroma."""

from importlib.metadata import PackageNotFoundError, version

from .engine import DEFAULT_TEMPLATE, KNOWN_CHECKPOINTS, POOLING_MODES, InBedder

try:
    __version__ = version("inbedder-integrations")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["DEFAULT_TEMPLATE", "KNOWN_CHECKPOINTS", "POOLING_MODES", "InBedder", "__version__"]
