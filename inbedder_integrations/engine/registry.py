"""One loaded model per load settings per process.

Adapters and Chroma rebuild embedding objects often; they all go through
:func:`get_loaded_model`, so the weights are loaded once and shared.  The maps
live in :mod:`inbedder_integrations.shared`, whose ``clear()`` releases them.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..shared import SharedRegistry
from .loading import (
    ModelKind,
    ModelSource,
    adapter_digest,
    load_model_and_tokenizer,
    resolve_adapter,
    resolve_device,
    resolve_dtype,
    resolve_source,
)


@dataclass(eq=False)
class LoadedModel:
    """Weights and tokenizer shared by every engine with the same load settings."""

    source: ModelSource
    model: PreTrainedModel
    """The LM with its head (``answer`` generates with it); the engine embeds with ``model.base_model``."""
    tokenizer: PreTrainedTokenizerBase
    kind: ModelKind
    dtype: torch.dtype
    device: torch.device
    adapter: str | None
    adapter_digest: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while running the model: one forward pass at a time uses the cores."""
    tokenizer_lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while tokenising (fast tokenizers are not re-entrant); apart from :attr:`lock`, so
    a server tokenises arriving requests while a batch runs."""
    users: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)
    """The live engines built on this model: closing one releases the model only when it was the last."""
    widths: dict[tuple[Any, ...], int] = field(default_factory=dict)
    """Vector widths by (layer, transform), read once (see ``ModelRunner.vector_width``)."""


if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["LoadedModel", "get_loaded_model", "release"]

#: Loaded models by what they are (weights and adapter digests, dtype, device).
_LOADED: SharedRegistry[tuple[Any, ...], LoadedModel] = SharedRegistry("loaded models")
#: The same models by the arguments that asked for them: a repeat call skips resolving and hashing.
_BY_ARGUMENTS: SharedRegistry[tuple[Any, ...], LoadedModel] = SharedRegistry("loaded models by arguments")


def get_loaded_model(
    model: str,
    *,
    revision: str | None = None,
    adapter: str | None = "auto",
    dtype: str | torch.dtype = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    kind: ModelKind | None = None,
) -> LoadedModel:
    """Return the process-wide loaded model for these settings, loading it on first use.

    ``kind`` (a known checkpoint's) overrides what the config suggests.
    """
    adapter = resolve_adapter(model, adapter)
    arguments = (model, revision, adapter, str(dtype), device, trust_remote_code, allow_pickle, kind)
    with _LOADED.lock:
        known = _BY_ARGUMENTS.get(arguments)
        if known is not None:
            return known
        source = resolve_source(
            model, revision=revision, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle
        )
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        adapter_hash = adapter_digest(adapter)
        key = (source.weights_digest, adapter_hash, torch_dtype, str(torch_device), trust_remote_code, kind)

        def load() -> LoadedModel:
            weights, tokenizer, loaded_kind = load_model_and_tokenizer(
                source,
                kind_hint=model,
                kind=kind,
                dtype=torch_dtype,
                device=torch_device,
                adapter=adapter,
                trust_remote_code=trust_remote_code,
                allow_pickle=allow_pickle,
            )
            return LoadedModel(
                source, weights, tokenizer, loaded_kind, torch_dtype, torch_device, adapter, adapter_hash
            )

        return _BY_ARGUMENTS.put(arguments, _LOADED.get_or_create(key, load))


def release(loaded: LoadedModel, user: object) -> bool:
    """``user`` no longer needs ``loaded``; forget the model if no other live engine uses it.

    Returns whether it was forgotten (the next request for its settings then loads it again).
    """
    with _LOADED.lock:
        loaded.users.discard(user)
        if loaded.users:
            return False
        _LOADED.discard(loaded)
        _BY_ARGUMENTS.discard(loaded)
        return True
