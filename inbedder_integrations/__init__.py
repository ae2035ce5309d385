"""Instruction-following InBedder embeddings for LangChain, LlamaIndex and Chroma.

The main names are importable from here, lazily (:mod:`.lazy`): ``import inbedder_integrations``
loads neither torch nor any framework; each name imports its module on first use,
so ``from inbedder_integrations import InBedderEmbeddings`` needs only the
``langchain`` extra, and a missing extra fails with the command that installs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports
from .version import __version__ as __version__

if TYPE_CHECKING:  # what type checkers read; _HOMES below is what runs
    from .cache import EmbeddingCache as EmbeddingCache
    from .chroma import InBedderEmbeddingFunction as InBedderEmbeddingFunction
    from .corpus import InstructedCorpus as InstructedCorpus
    from .engine import DEFAULT_TEMPLATE as DEFAULT_TEMPLATE
    from .engine import KNOWN_CHECKPOINTS as KNOWN_CHECKPOINTS
    from .engine import POOLING_MODES as POOLING_MODES
    from .engine import EmbeddingSettings as EmbeddingSettings
    from .engine import InBedder as InBedder
    from .errors import InBedderError as InBedderError
    from .langchain import InBedderEmbeddings as InBedderEmbeddings
    from .llama_index import InBedderEmbedding as InBedderEmbedding
    from .mteb import InBedderMTEB as InBedderMTEB
    from .shared import clear as clear


#: Each public name, once, under the module that defines it (relative to this package).
_HOMES = {
    ".cache": ("EmbeddingCache",),
    ".chroma": ("InBedderEmbeddingFunction",),
    ".corpus": ("InstructedCorpus",),
    ".engine": ("DEFAULT_TEMPLATE", "KNOWN_CHECKPOINTS", "POOLING_MODES", "EmbeddingSettings", "InBedder"),
    ".errors": ("InBedderError",),
    ".langchain": ("InBedderEmbeddings",),
    ".llama_index": ("InBedderEmbedding",),
    ".mteb": ("InBedderMTEB",),
    ".shared": ("clear",),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _HOMES)
__all__.append("__version__")
