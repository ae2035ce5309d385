"""Fine-tune an LM into an InBedder: the paper's objective, full or LoRA, with Hugging Face Trainer.

Causal LMs see ``template(input, instruction) + answer + EOS`` (no space, as the
paper's Alpaca-style code concatenates them) and the loss covers the answer and
EOS only.  Masked LMs see the prompt followed by as
many mask tokens as the answer has, and the loss covers exactly those masks.
Prompts are built by the same code the engine embeds with, so training and
inference see identical tokens.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..engine.loading import infer_kind, load_checked_weights, resolve_device, resolve_dtype, resolve_source
from ..engine.prompting import PromptTokenizer
from ..errors import InvalidArgumentError
from .base_kl import base_kl_trainer
from .card import add_evaluation_to_card, card_markdown, run_record, write_model_card
from .checkpoints import checkpoint_step, last_intact_checkpoint, manifest_callback
from .config import IGNORE_INDEX, TrainConfig, TrainResult
from .lora import apply_lora, check_adapter_base, check_init_adapter
from .rows import load_rows, training_rows

__all__ = [
    "IGNORE_INDEX",
    "MAX_MASKED_ANSWER_TOKENS",
    "ExampleEncoder",
    "PaddingCollator",
    "TrainConfig",
    "TrainResult",
    "add_evaluation_to_card",
    "answer_end_id",
    "card_markdown",
    "length_grouping",
    "load_rows",
    "train",
    "training_rows",
    "warmup_steps",
    "write_model_card",
]


logger = logging.getLogger(__name__)

MAX_MASKED_ANSWER_TOKENS = 8


# --------------------------------------------------------------------------- examples


@dataclass
class ExampleEncoder:
    """Turns a QA row into input_ids and labels with the engine's own prompt code."""

    tokenizer: Any
    template: str
    max_length: int
    masked: bool
    eos_id: int | None = None
    """The token that ends an answer; default the tokenizer's EOS (see :func:`answer_end_id`)."""

    def __post_init__(self) -> None:
        self._prompts: dict[tuple[int, int], PromptTokenizer] = {}

    def _prompt_tokenizer(self, max_length: int, mask_count: int) -> PromptTokenizer:
        key = (max_length, mask_count)
        if key not in self._prompts:
            self._prompts[key] = PromptTokenizer(
                self.tokenizer, self.template, max_length, mask_count=mask_count
            )
        return self._prompts[key]

    def encode(self, row: dict[str, str]) -> dict[str, list[int]]:
        """The answer is never cut: only the input text gives way to fit ``max_length``."""
        if self.masked:
            # a mask stands for a word-initial token, which byte-level BPE writes with its space
            answer = self.tokenizer(" " + row["output"].strip(), add_special_tokens=False)["input_ids"]
            answer = answer[:MAX_MASKED_ANSWER_TOKENS]
            prompts = self._prompt_tokenizer(self.max_length, mask_count=len(answer))
            input_ids = prompts.encode(row["input"], row["instruction"])
            answer_end = len(input_ids) - prompts.suffix_length
            labels = [IGNORE_INDEX] * len(input_ids)
            labels[answer_end - len(answer) : answer_end] = answer
        else:
            answer = self.tokenizer(row["output"].strip(), add_special_tokens=False)["input_ids"]
            target = [*answer, self.tokenizer.eos_token_id if self.eos_id is None else self.eos_id]
            prompt = self._prompt_tokenizer(self.max_length - len(target), 0).encode(
                row["input"], row["instruction"]
            )
            input_ids = prompt + target
            labels = [IGNORE_INDEX] * len(prompt) + target
        return {"input_ids": input_ids, "labels": labels}


class PaddingCollator:
    """Right-pads a batch; padded label positions are ignored by the loss."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(example["input_ids"]) for example in examples)
        batch = {"input_ids": [], "labels": [], "attention_mask": []}
        for example in examples:
            padding = width - len(example["input_ids"])
            batch["input_ids"].append(example["input_ids"] + [self.pad_id] * padding)
            batch["labels"].append(example["labels"] + [IGNORE_INDEX] * padding)
            batch["attention_mask"].append([1] * len(example["input_ids"]) + [0] * padding)
        return {key: torch.tensor(value, dtype=torch.long) for key, value in batch.items()}


# --------------------------------------------------------------------------- training


def train(config: TrainConfig, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Run training; writes the model (or adapter) folder and a model card to ``output_dir``.

    Rerun with the same ``output_dir``, it resumes from the newest whole checkpoint (a damaged one is
    moved aside, see :mod:`.checkpoints`), whose weights win over ``init_adapter`` (that only seeds a
    run's first start).  Bad data and an init adapter that does not fit fail before training.
    ``callbacks``: transformers ``TrainerCallback`` s (the CLI's bar) that replace its printing.
    """
    from transformers import set_seed

    started = time.time()
    _check_options(config)
    rows, row_counts = training_rows(config)  # bad data fails before the model loads
    init_adapter = check_init_adapter(config.init_adapter) if config.init_adapter else None
    source = resolve_source(config.base_model)
    if init_adapter is not None:  # so does an adapter of another base (its shapes: as it loads)
        check_adapter_base(init_adapter, source.display_name, source.weights_digest)
    set_seed(config.seed)  # a fresh LoRA's initial weights too, not only what Trainer seeds
    tokenizer, model, kind = _build_model(config, source)
    encoder = ExampleEncoder(
        tokenizer, config.template, config.max_length, masked=kind == "masked", eos_id=answer_end_id(model)
    )
    examples = [encoder.encode(row) for row in rows]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    use_bf16 = _use_bf16(config)
    logger.info(
        "training %d rows %s, bf16 autocast %s", len(examples), row_counts, "on" if use_bf16 else "off"
    )
    output_dir = Path(config.output_dir)
    trainer = _trainer(config, model, kind, examples, use_bf16, PaddingCollator(pad_id), callbacks)
    checkpoint = last_intact_checkpoint(output_dir / "checkpoints")
    first_step = checkpoint_step(checkpoint)
    clock = time.monotonic()
    trainer.train(resume_from_checkpoint=None if checkpoint is None else str(checkpoint))
    seconds = time.monotonic() - clock
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]

    model.to(getattr(torch, config.save_dtype)).save_pretrained(str(output_dir))
    if not config.lora:
        tokenizer.save_pretrained(output_dir)
    result = TrainResult(str(output_dir), trainer.state.global_step, losses, time.time() - started)
    result.kl_to_base = [entry["kl_to_base"] for entry in trainer.state.log_history if "kl_to_base" in entry]
    result.bf16 = use_bf16
    per_step = config.batch_size * config.gradient_accumulation_steps
    steps_run = result.steps - first_step
    result.examples_per_second = round(steps_run * per_step / seconds, 2) if steps_run > 0 else None
    logger.info("%d steps in this run, %s examples/s", steps_run, result.examples_per_second)
    run = run_record(config, row_counts, use_bf16, result, _trainable_parameters(model))
    run["resumed_from_step"] = first_step
    write_model_card(output_dir, config, source.display_name, source.weights_digest, result, rows, run)
    return result


def _check_options(config: TrainConfig) -> None:
    """Options that contradict each other fail before any data or model is read."""
    if not config.lora and (config.lora_layers or config.init_adapter or config.kl_to_base):
        raise InvalidArgumentError(
            "lora_layers, init_adapter and kl_to_base are LoRA options: drop them or --full"
        )
    if not (math.isfinite(config.kl_to_base) and config.kl_to_base >= 0):
        raise InvalidArgumentError(f"kl_to_base must be 0 (off) or more, got {config.kl_to_base}")


def _trainer(
    config: TrainConfig,
    model: Any,
    kind: str,
    examples: list[dict[str, list[int]]],
    use_bf16: bool,
    collator: PaddingCollator,
    callbacks: Sequence[Any],
) -> Any:
    """Hugging Face ``Trainer`` (with the KL term towards the base when asked), committing checkpoints."""
    from transformers import Trainer

    trainer_class = base_kl_trainer(config.kl_to_base, kind != "masked") if config.kl_to_base else Trainer
    trainer = trainer_class(
        model=model,
        args=_training_arguments(config, Path(config.output_dir), len(examples), use_bf16),
        train_dataset=examples,  # pyright: ignore[reportArgumentType]  # a list is a map-style dataset
        data_collator=collator,
        callbacks=[manifest_callback(), *callbacks],
    )
    _without_printing(trainer, callbacks)
    return trainer


def _build_model(config: TrainConfig, source: Any) -> tuple[Any, Any, str]:
    """Tokenizer, model in fp32 (wrapped for LoRA as ``config`` asks) and the model's kind."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    kind = infer_kind(
        config.base_model, AutoConfig.from_pretrained(source.load_path, revision=source.revision)
    )
    tokenizer = AutoTokenizer.from_pretrained(source.load_path, revision=source.revision)
    model_class = AutoModelForMaskedLM if kind == "masked" else AutoModelForCausalLM
    common = {"revision": source.revision}
    model = load_checked_weights(model_class, source, dtype=torch.float32, allow_pickle=False, common=common)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if config.lora:
        model = apply_lora(model, kind=kind, config=config)
        if config.gradient_checkpointing:
            model.enable_input_require_grads()
    trainable = _trainable_parameters(model)
    if trainable == 0:  # e.g. an init adapter with no LoRA weights in the top lora_layers blocks
        raise InvalidArgumentError(
            f"nothing to train: lora_layers={config.lora_layers} leaves no trainable weight"
            f" in the adapter {config.init_adapter}"
        )
    logger.info("%d trainable parameters", trainable)
    return tokenizer, model, kind


def _without_printing(trainer: Any, callbacks: Sequence[Any]) -> None:
    """A caller's own callbacks (a progress bar) replace transformers' bar and printed log dicts."""
    if callbacks:
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)


def _trainable_parameters(model: Any) -> int:
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def _use_bf16(config: TrainConfig) -> bool:
    """``config.bf16`` if set; otherwise bf16 only where it runs natively (emulated bf16 is slower)."""
    if config.bf16 is not None:
        return config.bf16
    return resolve_dtype("auto", resolve_device("auto")) == torch.bfloat16


def _training_arguments(config: TrainConfig, output_dir: Path, rows: int, use_bf16: bool) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        lr_scheduler_type="cosine",
        warmup_steps=warmup_steps(config, rows),
        logging_steps=config.logging_steps,
        save_steps=config.save_steps,
        save_total_limit=2,
        bf16=use_bf16,
        use_cpu=not torch.cuda.is_available(),
        seed=config.seed,
        data_seed=config.seed,
        **length_grouping(TrainingArguments),
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )


def answer_end_id(model: Any) -> int | None:
    """The model's own end-of-turn token from its generation config, where it names exactly one.

    Why: the tokenizer's EOS can be wrong (transformers 5.17 converted SmolLM2's GGUF tokenizer
    with ``<|im_start|>`` as EOS), while the generation config keeps the model's real one.
    """
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    return eos if isinstance(eos, int) else None


def warmup_steps(config: TrainConfig, rows: int) -> int:
    """``warmup_ratio`` of all optimiser steps, as a count (every transformers version reads that)."""
    per_epoch = math.ceil(rows / (config.batch_size * config.gradient_accumulation_steps))
    total = config.max_steps if config.max_steps > 0 else math.ceil(per_epoch * config.epochs)
    return int(config.warmup_ratio * total)


def length_grouping(arguments_class: type) -> dict[str, Any]:
    """Batches of similar length (less padding), under the name this transformers version uses."""
    fields = getattr(arguments_class, "__dataclass_fields__", {})
    if "train_sampling_strategy" in fields:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}
