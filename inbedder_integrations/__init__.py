"""Instruction-following InBedder embeddings for LangChain, LlamaIndex and Chroma.

The main names are importable from here, lazily: ``import inbedder_integrations``
loads neither torch nor any framework; each name imports its module on first use,
so ``from inbedder_integrations import InBedderEmbeddings`` needs only the
``langchain`` extra, and a missing extra fails with the command that installs it.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cache import EmbeddingCache
    from .chroma import InBedderEmbeddingFunction
    from .corpus import InstructedCorpus
    from .engine import DEFAULT_TEMPLATE, KNOWN_CHECKPOINTS, POOLING_MODES, EmbeddingSettings, InBedder
    from .errors import InBedderError
    from .langchain import InBedderEmbeddings
    from .llama_index import InBedderEmbedding
    from .shared import clear

try:
    __version__ = version("inbedder-integrations")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

#: Public name -> the module that defines it (relative to this package).
_EXPORTS = {
    "DEFAULT_TEMPLATE": ".engine",
    "KNOWN_CHECKPOINTS": ".engine",
    "POOLING_MODES": ".engine",
    "EmbeddingSettings": ".engine",
    "InBedder": ".engine",
    "EmbeddingCache": ".cache",
    "InstructedCorpus": ".corpus",
    "InBedderEmbeddings": ".langchain",
    "InBedderEmbedding": ".llama_index",
    "InBedderEmbeddingFunction": ".chroma",
    "InBedderError": ".errors",
    "clear": ".shared",
}

__all__ = [
    "DEFAULT_TEMPLATE",
    "KNOWN_CHECKPOINTS",
    "POOLING_MODES",
    "EmbeddingCache",
    "EmbeddingSettings",
    "InBedder",
    "InBedderEmbedding",
    "InBedderEmbeddingFunction",
    "InBedderEmbeddings",
    "InBedderError",
    "InstructedCorpus",
    "__version__",
    "clear",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562), then keep the name here."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
