"""One-time conversions into cached safetensors folders: GGUF files and pickle-only checkpoints.

Both end the same way: a folder written in a user-only staging directory with a
manifest of sha256 hashes, renamed into place atomically, checked against the
manifest at every load (hashes are memoised, so an intact folder costs a few
``stat`` calls) and rebuilt if damaged.

Pickle weights (``pytorch_model*.bin``) are read with torch's weights-only
unpickler, which runs no code and refuses anything but tensors and plain
containers; the converted folder is then loaded like any safetensors model.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..paths import cache_root, leads_outside
from ..quiet import quiet_libraries
from .digests import file_digest, write_json_atomically
from .weights import CONVERTIBLE_PICKLE, PICKLE_SUFFIXES, WeightsError, check_storage_records

__all__ = [
    "CONVERSION_MANIFEST",
    "companion_file",
    "conversion_damage",
    "converted_gguf",
    "converted_pickles",
    "pickle_weight_files",
]

logger = logging.getLogger(__name__)

CONVERSION_MANIFEST = "inbedder-conversion.json"
_PICKLE_INDEX = "pytorch_model.bin.index.json"
#: Weights for other frameworks that a repo may carry beside its pickles: never downloaded or copied.
_OTHER_FRAMEWORK_WEIGHTS = frozenset({".h5", ".msgpack", ".onnx", ".ot", ".tflite"})


def companion_file(name: str) -> bool:
    """Whether a top-level file of a pickle-only model is needed beside its weight pickles
    (config, tokenizer, generation config): not a pickle, an index of them, another framework's
    weights, a dot-file or something in a subfolder."""
    suffix = Path(name).suffix
    return (
        "/" not in name
        and not name.startswith(".")
        and name != _PICKLE_INDEX
        and suffix not in PICKLE_SUFFIXES
        and suffix not in _OTHER_FRAMEWORK_WEIGHTS
    )


def conversion_damage(folder: Path) -> str:
    """What is wrong with a converted folder against its manifest ("" when intact)."""
    try:
        expected: dict[str, str] = json.loads((folder / CONVERSION_MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"no readable {CONVERSION_MANIFEST}"
    for name, sha256 in expected.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if file_digest(path) != sha256:
            return f"{name} does not match its recorded sha256"
    return ""


def _ensure_converted(target: Path, write: Callable[[Path], dict[str, Any]]) -> Path:
    """``target`` if intact, else built anew by ``write(staging)`` (which returns the
    manifest's provenance fields) and renamed into place atomically."""
    damage = conversion_damage(target) if target.exists() else "missing"
    if damage == "":
        return target
    if damage != "missing":
        logger.warning("The converted model at %s is damaged (%s); converting again", target, damage)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))  # mode 0700
    damaged = target.parent / f".damaged-{target.name}-{os.getpid()}"
    try:
        provenance = write(staging)
        files = sorted(path for path in staging.iterdir() if path.is_file())
        for path in files:
            path.chmod(0o600)
        manifest = {**provenance, "files": {path.name: file_digest(path) for path in files}}
        write_json_atomically(staging / CONVERSION_MANIFEST, manifest)
        if target.exists() and conversion_damage(target):
            os.replace(target, damaged)
        try:
            os.replace(staging, target)
        except OSError:  # another process finished first: keep theirs
            if conversion_damage(target):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(damaged, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- GGUF


def converted_gguf(gguf_file: Path) -> tuple[Path, str]:
    """(the dequantised safetensors folder of ``gguf_file``, the file's sha256)."""
    digest = file_digest(gguf_file)
    target = cache_root() / "converted" / f"{gguf_file.stem}-{digest[:16]}"
    with quiet_libraries(), _no_gguf_bar():
        return _ensure_converted(target, lambda staging: _write_gguf(gguf_file, staging)), digest


@contextlib.contextmanager
def _no_gguf_bar() -> Iterator[None]:
    """transformers' GGUF reader draws a plain tqdm bar that its progress-bar switch does not
    reach; for the length of this package's own conversion, it draws none."""
    from transformers import modeling_gguf_pytorch_utils

    gguf_utils: Any = modeling_gguf_pytorch_utils
    original = gguf_utils.tqdm
    gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def _write_gguf(gguf_file: Path, staging: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("Converting %s to a cached safetensors folder (once)", gguf_file)
    source_dir, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=name)
    quantised = AutoModelForCausalLM.from_pretrained(source_dir, gguf_file=name, dtype=torch.float32)
    config = quantised.config
    # save_pretrained refuses GGUF-quantised models; the dequantised weights are plain fp32.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantised.state_dict())
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    return {"gguf": gguf_file.name}


# --------------------------------------------------------------------------- pickle weights


def pickle_weight_files(folder: Path) -> list[Path]:
    """The pickle files of a folder that hold its weights (``pytorch_model*.bin``); other
    pickles a training run leaves (``training_args.bin``, optimizer states) are not weights."""
    return sorted(path for path in folder.iterdir() if path.is_file() and CONVERTIBLE_PICKLE.match(path.name))


def converted_pickles(folder: Path, name: str) -> Path:
    """A cached safetensors copy of a pickle-only model folder, converted on first use.

    The folder's other files (config, tokenizer) are copied; pickles that are not
    weights are left out.  The manifest records the sha256 of every source pickle.
    """
    pickles = pickle_weight_files(folder)
    companions = [path for path in folder.iterdir() if path.is_file() and companion_file(path.name)]
    index = [folder / _PICKLE_INDEX] if (folder / _PICKLE_INDEX).is_file() else []
    _refuse_links_leaving(folder, [*pickles, *companions, *index])
    source = {path.name: file_digest(path) for path in pickles}
    digest = hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()
    target = cache_root() / "converted" / f"{name}-pickle-{digest[:16]}"

    def write(staging: Path) -> dict[str, Any]:
        logger.info(
            "%s has only pickle weights %s: reading them with torch's weights-only unpickler "
            "(no code runs) and converting them once to safetensors at %s",
            name,
            sorted(source),
            target,
        )
        for path in companions:
            shutil.copyfile(path, staging / path.name)  # follows links, all checked to stay inside
        for path in pickles:
            _pickle_to_safetensors(path, staging / _safetensors_name(path.name))
        _rename_index(folder, staging)
        return {"converted_from": str(folder), "source_sha256": source}

    return _ensure_converted(target, write)


def _safetensors_name(pickle_name: str) -> str:
    return "model" + pickle_name.removeprefix("pytorch_model").removesuffix(".bin") + ".safetensors"


def _refuse_links_leaving(folder: Path, files: list[Path]) -> None:
    """Refuse a conversion that would copy into the cache a file the folder does not hold:
    one of ``files`` linking outside it.  A hub cache snapshot's files link to its repo's
    ``blobs``, so for a snapshot the repo's folder is what they must stay inside."""
    root = folder.resolve()
    if root.parent.name == "snapshots" and root.parent.parent.name.startswith("models--"):
        root = root.parent.parent
    leaving = [f"{path.name} -> {path.resolve()}" for path in files if leads_outside(path, root)]
    if leaving:
        raise WeightsError(
            f"model folder {folder}: {len(leaving)} file(s) link outside it ({', '.join(leaving[:5])}); "
            "converting would copy what they point at into the cache. Copy the files into the "
            "folder instead of linking them."
        )


def _rename_index(folder: Path, staging: Path) -> None:
    """A sharded checkpoint's index, pointing at the safetensors shards instead."""
    index = folder / _PICKLE_INDEX
    if not index.is_file():
        return
    content = json.loads(index.read_text())
    content["weight_map"] = {key: _safetensors_name(shard) for key, shard in content["weight_map"].items()}
    (staging / "model.safetensors.index.json").write_text(json.dumps(content, indent=2))


def _pickle_to_safetensors(source: Path, target: Path) -> None:
    from safetensors.torch import save_file

    state = read_weights_only(source)
    save_file(_unshared(state), str(target), metadata={"format": "pt"})


def read_weights_only(path: Path) -> dict[str, Any]:
    """The tensors of a pickle file, read without running any code it may carry."""
    import pickle

    import torch

    mapped = zipfile.is_zipfile(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mapped)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise WeightsError(
            f"{path} cannot be read as plain weights: torch's weights-only unpickler refused it "
            f"({first_line}). It may hold code. If you trust its source, pass allow_pickle=True "
            "(CLI: --allow-pickle) to load it as a full pickle."
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors; it cannot be converted")
    if mapped:
        check_storage_records(path, state)
    return state


def _unshared(state: dict[str, Any]) -> dict[str, Any]:
    """Tensors safetensors can store: contiguous, and no two on one storage (tied weights are copied)."""
    seen: set[int] = set()
    result = {}
    for key, tensor in state.items():
        pointer = tensor.untyped_storage().data_ptr()
        result[key] = tensor.clone() if pointer in seen else tensor.contiguous()
        seen.add(pointer)
    return result
