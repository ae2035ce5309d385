"""The adapters' constructor arguments: each ecosystem's names beside ours, and nothing unknown.

LangChain, LlamaIndex and Chroma users bring their ecosystem's names (``model_name``,
``text_instruction``, ``embed_batch_size``, ``normalize_embeddings``, ``device``).  The adapters
accept them as aliases of one canonical name each, and refuse what they do not know with a
hint, instead of ignoring it (a typo that silently embeds with the default model on the CPU is
the worst kind of error).  A ground-floor module: it imports only :mod:`.errors` (and torch,
lazily, to check a device).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InBedderError, InvalidArgumentError, InvalidTypeError

__all__ = [
    "ConflictingArgumentError",
    "DeviceUnavailableError",
    "UnknownArgumentError",
    "adapter_arguments",
    "check_device",
    "merge_device",
    "resolve_arguments",
]


class UnknownArgumentError(InvalidTypeError):
    """An adapter was given an argument it does not know (a ``TypeError``, as Python's own)."""


class ConflictingArgumentError(InvalidTypeError):
    """One setting was given twice with different values (``model`` and ``model_name``, or
    ``device`` and ``model_kwargs["device"]``): a ``TypeError``, as Python's "multiple values"."""


class DeviceUnavailableError(InBedderError, RuntimeError):
    """The device asked for is not on this machine (``"cuda"`` without a GPU or a CUDA torch)."""


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def resolve_arguments(
    owner: str, given: Mapping[str, Any], known: Iterable[str], aliases: Mapping[str, str]
) -> dict[str, Any]:
    """``given`` with every alias renamed to its canonical name (``aliases``: alias -> canonical).

    An argument neither known nor an alias raises :class:`UnknownArgumentError` with the closest
    known name; a canonical name given twice (by itself and an alias, or by two aliases) with
    different values raises :class:`ConflictingArgumentError` naming both.
    """
    names = set(known) | set(aliases)
    resolved: dict[str, Any] = {}
    source: dict[str, str] = {}
    for name, value in given.items():
        if name not in names:
            raise UnknownArgumentError(
                f"{owner} got an unknown argument {name!r}{_hint(name, names)} "
                f"(it accepts {', '.join(sorted(names))})"
            )
        canonical = aliases.get(name, name)
        if canonical in resolved and resolved[canonical] != value:
            raise ConflictingArgumentError(
                f"{owner} got {source[canonical]}={resolved[canonical]!r} and {name}={value!r}, "
                f"two names for one setting ({canonical}): pass one of them"
            )
        resolved[canonical] = value
        source.setdefault(canonical, name)
    return resolved


def merge_device(owner: str, device: Any, model_kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    """``model_kwargs`` with ``device`` in it (the engine's load option); both naming different
    devices raises :class:`ConflictingArgumentError`."""
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise InvalidTypeError(f"{owner}'s model_kwargs must be a dict, got {model_kwargs!r}")
    merged = dict(model_kwargs or {})
    if device is None:
        return merged
    if not isinstance(device, str) or not device.strip():
        raise InvalidTypeError(
            f"{owner}'s device must be a non-empty str like 'cpu' or 'cuda', got {device!r}"
        )
    if "device" in merged and merged["device"] != device:
        raise ConflictingArgumentError(
            f"{owner} got device={device!r} and model_kwargs['device']={merged['device']!r}: "
            f"pass the device once"
        )
    merged["device"] = device
    return merged


def check_device(device: Any) -> None:
    """Refuse, before any model loads, a device this machine cannot use: torch itself says only
    "Torch not compiled with CUDA enabled" (an ``AssertionError``) once the weights are read."""
    if device is None or device == "auto":
        return
    if not isinstance(device, str):
        raise InvalidTypeError(f"device must be a str like 'cpu' or 'cuda', got {device!r}")
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        hint = _hint(device.split(":")[0], ("cpu", "cuda", "mps", "auto"))
        raise InvalidArgumentError(f"device={device!r} is not a torch device{hint}") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device={device!r} was asked for, but this machine has no CUDA GPU that torch can use "
            f"(torch.cuda.is_available() is False): use device='cpu', "
            f"or 'auto' to take a GPU when there is one"
        )
    index = torch.device(device).index
    if kind == "cuda" and index is not None and index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise DeviceUnavailableError(
            f"device={device!r} was asked for, but this machine has {count} CUDA GPU(s)"
        )
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceUnavailableError(f"device={device!r} was asked for, but this machine has no MPS device")


def adapter_arguments(
    owner: str, given: Mapping[str, Any], known: Iterable[str], aliases: Mapping[str, str]
) -> dict[str, Any]:
    """An adapter's constructor arguments, checked before anything loads: aliases renamed
    (:func:`resolve_arguments`), ``device`` merged into ``model_kwargs`` (:func:`merge_device`)
    and checked on this machine (:func:`check_device`); a device beside ``server_url`` is refused,
    since the server embeds on its own."""
    data = resolve_arguments(owner, given, known, aliases)
    device = data.get("device")
    if data.get("server_url") is not None:
        if device is not None:
            raise InvalidArgumentError(
                f"{owner} got device={device!r} and server_url: the server embeds on its own device"
            )
        return data
    if device is not None:
        data["model_kwargs"] = merge_device(owner, device, data.get("model_kwargs"))
    options = data.get("model_kwargs")
    if isinstance(options, Mapping):
        check_device(options.get("device"))
    return data
