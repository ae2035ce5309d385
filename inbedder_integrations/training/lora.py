"""LoRA for training: a fresh adapter, or one continued from an existing adapter, on all or the top layers.

Why the top layers: on a CPU most of a step is the backward pass; with LoRA only
on the top N blocks (and nothing trainable below them), autograd stops there, so a
step costs about a third less (docs/training.md has the measured rates).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..engine.loading import resolve_adapter
from ..engine.weights import WeightsError, check_safetensors_file
from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = [
    "adapted_layers",
    "apply_lora",
    "block_linear_names",
    "check_adapter_base",
    "check_init_adapter",
    "freeze_below",
    "init_adapter_folder",
    "layer_count",
]

logger = logging.getLogger(__name__)

_LAYER_INDEX = re.compile(r"\.layers?\.(\d+)\.")


def layer_count(model: Any) -> int:
    """The number of transformer blocks (``num_hidden_layers``)."""
    count = getattr(model.config, "num_hidden_layers", None)
    if not isinstance(count, int):
        raise InvalidArgumentError(f"{type(model).__name__} has no num_hidden_layers: --lora-layers needs it")
    return count


def _top_layers(model: Any, lora_layers: int) -> list[int]:
    total = layer_count(model)
    if not 1 <= lora_layers <= total:
        raise InvalidArgumentError(
            f"lora_layers must be between 1 and {total} (the model's layers), got {lora_layers}"
        )
    return list(range(total - lora_layers, total))


def init_adapter_folder(init_adapter: str) -> Path:
    """The folder of the adapter to continue from; ``"default"`` is the shipped InBedder adapter."""
    resolved = resolve_adapter("default", "auto") if init_adapter == "default" else init_adapter
    folder = Path(str(resolved)).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise FileNotFoundError(f"init_adapter {init_adapter}: no adapter_config.json in {folder}")
    return folder


def check_init_adapter(init_adapter: str) -> Path:
    """The folder of the adapter to continue from, checked offline before any model loads: a
    LoRA config and whole safetensors weights (without them peft would look on the hub)."""
    folder = init_adapter_folder(init_adapter)
    config = _adapter_config(folder)
    if config.get("peft_type", "LORA") != "LORA":
        raise WeightsError(
            f"init adapter {folder} is a {config['peft_type']!r} adapter; training continues LoRA only"
        )
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        raise WeightsError(
            f"init adapter {folder} has adapter_config.json but no adapter_model.safetensors: "
            "the adapter's weights are missing (an incomplete copy?)"
        )
    check_safetensors_file(weights)
    return folder


def check_adapter_base(folder: Path, base_name: str, base_digest: str | None) -> None:
    """Refuse an adapter whose card (``inbedder train`` writes one) records other base weights
    than the model being trained; an adapter without a card is judged by its shapes at load."""
    try:
        card = json.loads((folder / "inbedder_card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    trained_on = card.get("base_weights") if isinstance(card, dict) else None
    if isinstance(trained_on, str) and base_digest and trained_on != base_digest:
        raise WeightsError(
            f"init adapter {folder} was trained on {card.get('base_model')!r} (weights {trained_on}), "
            f"not on {base_name} (weights {base_digest}): continue it on its own base model "
            "(--model), or drop --init-adapter to train a fresh one"
        )


def _adapter_config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except ValueError as exc:
        raise WeightsError(f"init adapter {folder}: adapter_config.json is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise WeightsError(f"init adapter {folder}: adapter_config.json is not a JSON object")
    return config


def apply_lora(model: Any, *, kind: str, config: TrainConfig) -> Any:
    """The model wrapped for LoRA training as ``config`` asks."""
    from peft import LoraConfig, get_peft_model

    top = _top_layers(model, config.lora_layers) if config.lora_layers else None
    if config.init_adapter:
        folder = check_init_adapter(config.init_adapter)
        model = _load_init_adapter(model, folder, config.base_model)
        for parameter in model.parameters():
            if parameter.requires_grad:  # saved in bf16 maybe; train fp32 master weights
                parameter.data = parameter.data.to(torch.float32)
        logger.info("continuing from the adapter in %s (its own r, alpha and modules)", folder)
        if top:
            freeze_below(model, top[0])
        return model
    modules = config.lora_target_modules
    if top and modules == "all-linear":  # peft takes layers_to_transform only with named modules
        modules = block_linear_names(model)
    lora_config = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=modules,
        task_type="CAUSAL_LM" if kind == "causal" else None,
        layers_to_transform=top,
        layers_pattern="layers" if top else None,
    )
    return get_peft_model(model, lora_config)


def _load_init_adapter(model: Any, folder: Path, base_model: str) -> Any:
    """``model`` with the adapter in ``folder``, refused unless the adapter's LoRA weights are
    exactly the ones the model gets: peft fills missing ones with a fresh LoRA, with a warning."""
    from peft import PeftModel
    from safetensors import safe_open

    with safe_open(str(folder / "adapter_model.safetensors"), framework="pt") as handle:
        saved = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys() if "lora_" in key}  # noqa: SIM118
    trained_on = _adapter_config(folder).get("base_model_name_or_path")
    fits = f"init adapter {folder} (trained on {trained_on!r}) does not fit the model {base_model!r}"
    try:
        model = PeftModel.from_pretrained(model, str(folder), is_trainable=True)
    except (RuntimeError, ValueError, KeyError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise WeightsError(f"{fits}: {first_line[:300]}") from None
    wanted = {
        name.replace(".default", ""): tuple(parameter.shape)
        for name, parameter in model.named_parameters()
        if "lora_" in name
    }
    missing, unexpected = sorted(wanted.keys() - saved.keys()), sorted(saved.keys() - wanted.keys())
    wrong = sorted(key for key in wanted.keys() & saved.keys() if wanted[key] != saved[key])
    for keys, what in ((missing, "has no weights for"), (unexpected, "has weights the model lacks:"),
                       (wrong, "has other shapes for")):  # fmt: skip
        if keys:
            raise WeightsError(f"{fits}: it {what} {len(keys)} LoRA tensors, e.g. {keys[0]}")
    return model


def block_linear_names(model: Any) -> list[str]:
    """The names of the linear layers inside the transformer blocks (what ``all-linear`` means)."""
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and _LAYER_INDEX.search(name + ".")
        }
    )


def freeze_below(model: Any, first_trained: int) -> int:
    """Stop training LoRA weights of blocks below ``first_trained``; returns how many were frozen.

    Why: with nothing trainable below them, the backward pass never reaches those
    blocks; the saved adapter keeps their weights unchanged.
    """
    frozen = 0
    for name, parameter in model.named_parameters():
        found = _LAYER_INDEX.search(name)
        if parameter.requires_grad and found and int(found.group(1)) < first_trained:
            parameter.requires_grad_(False)
            frozen += 1
    logger.info("LoRA trained on layers %d and up (%d tensors below them frozen)", first_trained, frozen)
    return frozen


def adapted_layers(model: Any, *, trainable_only: bool = False) -> list[int]:
    """The block indices that hold LoRA weights (or trainable ones), sorted."""
    found = set()
    for name, parameter in model.named_parameters():
        match = _LAYER_INDEX.search(name)
        if "lora_" in name and match and (parameter.requires_grad or not trainable_only):
            found.add(int(match.group(1)))
    return sorted(found)
