"""Check weight files before anything is loaded from them.

Pickle files (``*.bin``, ``*.pt``...) can run code when they are loaded as full
pickles.  A model folder whose weights are pickles only (``pytorch_model*.bin``)
is reported as such, and the loader converts it through torch's weights-only
unpickler (:mod:`.conversion`); any other pickle-only folder, and pickle
adapters, need ``allow_pickle=True``.  A truncated or corrupt safetensors file,
or a missing shard, is reported by name here, before transformers fails with a
vaguer message or loads a part.

Once loaded, whatever the path (a safetensors folder, a converted pickle or GGUF
file, a hub id), the weights must fill the model exactly and be finite
(:func:`check_loading_info`, :func:`check_finite`): a missing weight would be
random, so two loads would give different vectors under one fingerprint, and a
NaN weight gives NaN vectors.  A pickle's storage records must hold the bytes its
tensors claim (:func:`check_storage_records`).
"""

from __future__ import annotations

import json
import re
import struct
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from ..errors import InBedderError

__all__ = [
    "ALLOW_PICKLE_HINT",
    "CONVERTIBLE_PICKLE",
    "PICKLE_SUFFIXES",
    "WeightsError",
    "check_finite",
    "check_loading_info",
    "check_safetensors_file",
    "check_storage_records",
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


def _listed(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_loading_info(info: Mapping[str, Any], *, name: str) -> None:
    """Refuse a checkpoint that does not fill the model exactly, naming the tensors.

    ``info`` is what ``from_pretrained(..., output_loading_info=True)`` returns.  Tied
    weights (``lm_head`` tied to ``embed_tokens``) and the keys a model class declares
    ignorable are not in it: transformers leaves them out.
    """
    missing = sorted(str(key) for key in info.get("missing_keys") or ())
    if missing:
        raise WeightsError(
            f"{name}: the checkpoint lacks {len(missing)} weight(s) the model needs: {_listed(missing)}. "
            "They would be filled with random values, so two loads would give different vectors; "
            "the checkpoint is incomplete or its config describes another model"
        )
    unexpected = sorted(str(key) for key in info.get("unexpected_keys") or ())
    if unexpected:
        raise WeightsError(
            f"{name}: the checkpoint holds {len(unexpected)} weight(s) the model has no place for: "
            f"{_listed(unexpected)}; it was saved from another architecture or config"
        )
    mismatched = sorted(
        f"{key} (checkpoint {list(saved)}, config {list(wanted)})"
        for key, saved, wanted in info.get("mismatched_keys") or ()
    )
    if mismatched:
        raise WeightsError(
            f"{name}: {len(mismatched)} weight(s) do not have the shape its config gives: "
            f"{_listed(mismatched)}; the checkpoint and its config.json do not belong together"
        )


def check_finite(tensors: Iterable[tuple[str, Any]], *, name: str) -> None:
    """Refuse NaN or infinite weights, naming the tensors that hold them.

    One sum per tensor screens them (NaN and inf survive a sum); only a tensor whose
    sum is not finite is looked at element by element, since finite values can also
    overflow a sum.  The screen is cheap: its cost on the default model is in docs/reliability.md.
    """
    import torch

    bad: list[str] = []
    seen: set[tuple[int, int, tuple[int, ...]]] = set()  # a tied weight is looked at once
    with torch.no_grad():
        for key, tensor in tensors:
            if not tensor.is_floating_point() or tensor.device.type == "meta":
                continue
            identity = (tensor.data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
            if identity in seen:
                continue
            seen.add(identity)
            if bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all()):
                continue
            count = int((~torch.isfinite(tensor)).sum())
            bad.append(f"{key} ({count} of {tensor.numel()} values)")
    if bad:
        raise WeightsError(
            f"{name}: {len(bad)} weight tensor(s) hold NaN or infinite values: {_listed(bad)}. "
            "Every vector would be NaN; the file is damaged, re-download or re-create it"
        )


def check_storage_records(path: Path, state: Mapping[str, Any]) -> None:
    """Each storage of a pickle read with ``torch.load(mmap=True)`` must fit its zip record.

    With ``mmap``, torch reads a storage's bytes from its record's offset without
    checking that the record holds them: a record cut short lends the storage the
    bytes of whatever follows.  The storages are slices of one mapping of the file,
    so, ordered by address, they match the data records ordered by offset.
    """
    records = _data_records(path)
    storages: dict[int, tuple[int, str]] = {}
    for key, tensor in state.items():
        storage = tensor.untyped_storage()
        if storage.nbytes():
            storages.setdefault(storage.data_ptr(), (storage.nbytes(), key))
    if len(storages) != len(records):
        raise WeightsError(
            f"{path}: its tensors use {len(storages)} storage(s) but it holds {len(records)} data "
            "record(s); the file is damaged"
        )
    base = min(storages, default=0) - (records[0][0] if records else 0)
    for (pointer, (nbytes, key)), (offset, size, record) in zip(
        sorted(storages.items()), records, strict=True
    ):
        if pointer - base != offset or nbytes != size:
            raise WeightsError(
                f"{path}: tensor {key!r} needs {nbytes} bytes but its storage record {record} holds "
                f"{size}; the file is cut short or damaged, re-download or re-create it"
            )


def _data_records(path: Path) -> list[tuple[int, int, str]]:
    """(offset of the data, size, name) of each non-empty storage record of a torch zip file."""
    records = []
    with zipfile.ZipFile(path) as archive, path.open("rb") as handle:
        for info in archive.infolist():
            if not re.search(r"(^|/)data/\d+$", info.filename) or not info.file_size:
                continue
            if info.compress_type != zipfile.ZIP_STORED:
                raise WeightsError(
                    f"{path}: storage record {info.filename} is compressed; torch cannot map it"
                )
            handle.seek(info.header_offset + 26)
            name_length, extra_length = struct.unpack("<HH", handle.read(4))
            offset = info.header_offset + 30 + name_length + extra_length
            records.append((offset, info.file_size, info.filename))
    return sorted(records)
