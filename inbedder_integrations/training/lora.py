"""LoRA for training: a fresh adapter, or one continued from an existing adapter, on all or the top layers.

Why the top layers: on a CPU most of a step is the backward pass; with LoRA only
on the top N blocks (and nothing trainable below them), autograd stops there, so a
step costs about a third less (docs/training.md has the measured rates).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..engine.loading import resolve_adapter
from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    from .train import TrainConfig

__all__ = [
    "adapted_layers",
    "apply_lora",
    "block_linear_names",
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


def apply_lora(model: Any, *, kind: str, config: TrainConfig) -> Any:
    """The model wrapped for LoRA training as ``config`` asks."""
    from peft import LoraConfig, PeftModel, get_peft_model

    top = _top_layers(model, config.lora_layers) if config.lora_layers else None
    if config.init_adapter:
        folder = init_adapter_folder(config.init_adapter)
        model = PeftModel.from_pretrained(model, str(folder), is_trainable=True)
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
