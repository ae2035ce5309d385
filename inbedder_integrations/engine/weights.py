"""Check weight files before anything is loaded from them.

Pickle files (``*.bin``, ``*.pt``...) can run code when they are loaded as full
pickles.  A model folder whose weights are pickles only (``pytorch_model*.bin``)
is reported as such, and the loader converts it through torch's weights-only
unpickler (:mod:`.conversion`); any other pickle-only folder, and pickle
adapters, need ``allow_pickle=True``.  A truncated or corrupt safetensors file,
or a missing shard, is reported by name here, before transformers fails with a
vaguer message or loads a part.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from ..errors import InBedderError

__all__ = [
    "ALLOW_PICKLE_HINT",
    "CONVERTIBLE_PICKLE",
    "PICKLE_SUFFIXES",
    "WeightsError",
    "check_safetensors_file",
    "check_weights_folder",
]


PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl"})
#: Pickle files the loader can convert: transformers' model weights (``pytorch_model*.bin``).
CONVERTIBLE_PICKLE = re.compile(r"^pytorch_model(-\d+-of-\d+)?\.bin$")
ALLOW_PICKLE_HINT = (
    "Pickle files can run arbitrary code when loaded. Convert them to safetensors, or, if you "
    "trust their source, pass allow_pickle=True (CLI: --allow-pickle)."
)


class WeightsError(InBedderError, ValueError):
    """A model or adapter whose weight files cannot be used as they are."""


def check_weights_folder(
    folder: Path, *, allow_pickle: bool, what: str = "model"
) -> Literal["safetensors", "pickle"]:
    """The format of ``folder``'s weights; :class:`WeightsError` unless they are complete and
    loadable (pickles: convertible model weights, or any pickle with ``allow_pickle``)."""
    files = [path for path in folder.iterdir() if path.is_file()]
    safetensors = sorted(path for path in files if path.suffix == ".safetensors")
    pickles = sorted(path.name for path in files if path.suffix in PICKLE_SUFFIXES)
    for index in folder.glob("*.safetensors.index.json"):
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (ValueError, KeyError, TypeError) as exc:
            message = f"{what} folder {folder}: {index.name} is not a valid shard index ({exc})"
            raise WeightsError(message) from None
        missing = sorted(shard for shard in shards if not (folder / shard).is_file())
        if missing:
            raise WeightsError(
                f"{what} folder {folder}: {index.name} lists {missing} but they are missing; "
                "the download or copy is incomplete"
            )
    if not safetensors:
        if not pickles:
            raise WeightsError(f"{what} folder {folder} has no weights file (expected *.safetensors)")
        convertible = what == "model" and any(CONVERTIBLE_PICKLE.match(name) for name in pickles)
        if not allow_pickle and not convertible:
            message = f"{what} folder {folder} has only pickle weights {pickles}. {ALLOW_PICKLE_HINT}"
            raise WeightsError(message)
        return "pickle"
    for path in safetensors:
        check_safetensors_file(path)
    return "safetensors"


def check_safetensors_file(path: Path) -> None:
    """Parse the header: catches truncated files, garbage and headers that do not cover the data."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError) as exc:
        raise WeightsError(
            f"weights file {path} is corrupt or truncated ({exc}); re-download or re-create it"
        ) from None
