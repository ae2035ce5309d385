"""One loaded model per configuration per process, and the vector fingerprint.

Adapters and Chroma rebuild embedding objects often; they all go through
:func:`get_loaded_model`, so the weights are loaded once and shared.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import torch

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
    model: Any
    tokenizer: Any
    kind: ModelKind
    dtype: torch.dtype
    device: torch.device
    adapter: str | None
    adapter_digest: str | None
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while tokenising and running the model: fast tokenizers are not re-entrant."""


_LOADED: dict[tuple[Any, ...], LoadedModel] = {}
_BY_ARGUMENTS: dict[tuple[Any, ...], LoadedModel] = {}
_REGISTRY_LOCK = threading.Lock()


def get_loaded_model(
    model: str,
    *,
    revision: str | None = None,
    adapter: str | None = "auto",
    dtype: str | torch.dtype = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
) -> LoadedModel:
    """Return the process-wide loaded model for these settings, loading it on first use."""
    adapter = resolve_adapter(model, adapter)
    arguments = (model, revision, adapter, str(dtype), device, trust_remote_code, allow_pickle)
    with _REGISTRY_LOCK:
        if arguments in _BY_ARGUMENTS:
            return _BY_ARGUMENTS[arguments]
        source = resolve_source(
            model, revision=revision, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle
        )
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        adapter_hash = adapter_digest(adapter)
        key = (source.weights_digest, adapter_hash, torch_dtype, str(torch_device), trust_remote_code)
        if key not in _LOADED:
            weights, tokenizer, kind = load_model_and_tokenizer(
                source,
                kind_hint=model,
                dtype=torch_dtype,
                device=torch_device,
                adapter=adapter,
                trust_remote_code=trust_remote_code,
                allow_pickle=allow_pickle,
            )
            _LOADED[key] = LoadedModel(
                source, weights, tokenizer, kind, torch_dtype, torch_device, adapter, adapter_hash
            )
        _BY_ARGUMENTS[arguments] = _LOADED[key]
        return _LOADED[key]


def fingerprint(display_name: str, settings: dict[str, Any]) -> str:
    """A stable id of everything that shapes the vectors: ``<model>@<hash>``."""
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return f"{display_name}@{hashlib.sha256(canonical.encode()).hexdigest()[:20]}"
