"""A KL term towards the untuned base: train the adapter's answers without forgetting the base's.

Issue 35 found the fine-tuned default narrow: it answers new questions as if they were one
of its trained families ("food" to every "What kind of food ...?"), while the untuned base
still answers them ("The restaurant serves sushi").  Scaling the LoRA update towards zero
(``recipes/scale_adapter.py``) keeps more of the base but loses the trained families with
it.  This term instead penalises, at every answer position, how far the tuned model's
next-token distribution moved from the base's, so training pays for each departure it
makes rather than for all of them alike:

    loss = answer cross-entropy + weight * mean KL(p_base || p_tuned) over answer positions

The base is the same model with its adapters switched off (``PeftModel.disable_adapter``),
so no second copy is held: one extra forward pass per step, without gradients.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .config import IGNORE_INDEX

__all__ = ["answer_kl", "base_kl_trainer"]


def answer_kl(
    tuned_logits: torch.Tensor, base_logits: torch.Tensor, labels: torch.Tensor, causal: bool
) -> torch.Tensor:
    """Mean KL(base || tuned) over the positions that predict an answer token.

    Causal LMs: the logits at position t predict token t + 1, so the positions are those whose
    *next* label is an answer token (as the loss shifts them).  Masked LMs: the mask positions
    themselves.  No answer position in the batch: zero (with a graph, so backward still works).
    """
    if causal:
        tuned_logits, base_logits, labels = tuned_logits[:, :-1], base_logits[:, :-1], labels[:, 1:]
    positions = labels != IGNORE_INDEX
    if not bool(positions.any()):
        return tuned_logits.sum() * 0.0
    tuned = F.log_softmax(tuned_logits[positions].float(), dim=-1)
    base = F.log_softmax(base_logits[positions].float(), dim=-1)
    return F.kl_div(tuned, base, log_target=True, reduction="batchmean")


def base_kl_trainer(weight: float, causal: bool) -> type:
    """A ``Trainer`` whose loss adds ``weight`` x :func:`answer_kl` against the model with adapters off.

    Each logged step also carries ``kl_to_base``, the unweighted KL's mean since the last log, so
    a run shows how far its answers have moved from the base and not only the summed loss.
    """
    from transformers import Trainer

    class BaseKLTrainer(Trainer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._kl_since_log: list[float] = []

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            if "loss" in logs and self._kl_since_log:
                logs["kl_to_base"] = sum(self._kl_since_log) / len(self._kl_since_log)
                self._kl_since_log.clear()
            super().log(logs, start_time)

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            with_outputs: Any = super().compute_loss(
                model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
            )
            loss, outputs = with_outputs
            model_inputs = {key: value for key, value in inputs.items() if key != "labels"}
            with torch.no_grad(), self.accelerator.unwrap_model(model).disable_adapter():
                base_logits = model(**model_inputs).logits
            kl = answer_kl(outputs.logits, base_logits, inputs["labels"], causal)
            if model.training:
                self._kl_since_log.append(float(kl.detach()))
            loss = loss + weight * kl
            return (loss, outputs) if return_outputs else loss

    return BaseKLTrainer
