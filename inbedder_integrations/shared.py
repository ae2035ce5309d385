"""Objects shared across a process (loaded models, engines, caches), and how to release them.

Chroma and the framework adapters rebuild embedding objects many times per
collection; sharing one loaded model per load settings keeps that cheap.  The
price is that the process holds those models until told otherwise:
:func:`clear` forgets every shared object (and empties the GPU allocator's
cache), so a long-running app or a notebook can free the memory.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["SharedRegistry", "clear"]

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_REGISTRIES: list[SharedRegistry[Any, Any]] = []


class SharedRegistry(Generic[K, V]):
    """A process-wide map from settings to a shared object, created once under a lock."""

    def __init__(self, name: str, *, on_release: Callable[[V], None] | None = None) -> None:
        self.name = name
        self.lock = threading.RLock()
        """Held while creating: two threads asking for the same key get one object."""
        self._items: dict[K, V] = {}
        self._on_release = on_release
        _REGISTRIES.append(self)

    def get(self, key: K) -> V | None:
        with self.lock:
            return self._items.get(key)

    def put(self, key: K, value: V) -> V:
        with self.lock:
            self._items[key] = value
            return value

    def get_or_create(self, key: K, create: Callable[[], V]) -> V:
        with self.lock:
            if key not in self._items:
                self._items[key] = create()
            return self._items[key]

    def discard(self, value: V) -> int:
        """Forget every key that maps to ``value`` (by identity); how many were dropped."""
        with self.lock:
            keys = [key for key, item in self._items.items() if item is value]
            for key in keys:
                del self._items[key]
        return len(keys)

    def clear(self) -> int:
        """Forget every object, releasing each distinct one once; how many were held."""
        with self.lock:
            items, self._items = self._items, {}
        distinct = {id(item): item for item in items.values()}
        if self._on_release is not None:
            for item in distinct.values():
                self._on_release(item)
        return len(distinct)

    def __len__(self) -> int:
        return len(self._items)


def clear() -> int:
    """Forget every shared model, engine and cache in this process; how many objects were held.

    Memory comes back once the caller's own references (an engine, an embeddings
    object) are gone too; engines already built keep working until then.  Use
    :meth:`InBedder.close <inbedder_integrations.InBedder.close>` to release one
    engine's model at once.
    """
    released = sum(registry.clear() for registry in _REGISTRIES)
    gc.collect()
    empty_accelerator_cache()
    log.info("released %d shared objects", released)
    return released


def empty_accelerator_cache() -> None:
    """Hand freed GPU memory back to the device, where torch is loaded and a GPU is in use."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
