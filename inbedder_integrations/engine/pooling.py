"""Pooling: which hidden states of the last layer become the embedding.

Every mode is "average the hidden states at these positions"; the modes differ
only in which positions the engine marks (see ``InBedder._pool_positions``):

* ``last_prompt_token`` (causal default, the paper's *fst_gen*): the final prompt
  token, whose state is what the model predicts the answer from.
* ``mask_mean`` (masked default): the mask tokens appended after the prompt.
* ``mean_answer_tokens`` (the paper's *avg_gen*): the states that produced each
  greedily generated answer token, the first of which is the last prompt token.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

PoolingMode = Literal["last_prompt_token", "mask_mean", "mean_answer_tokens"]
POOLING_MODES: tuple[str, ...] = get_args(PoolingMode)
DEFAULT_POOLING: dict[str, PoolingMode] = {"causal": "last_prompt_token", "masked": "mask_mean"}
_SUPPORTED: dict[str, set[str]] = {
    "causal": {"last_prompt_token", "mean_answer_tokens"},
    "masked": {"mask_mean"},
}


def resolve_pooling(pooling: str | None, kind: str) -> PoolingMode:
    """The pooling for a model kind, or a clear error when the pair makes no sense."""
    if pooling is None:
        return DEFAULT_POOLING[kind]
    if pooling not in POOLING_MODES:
        raise ValueError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}")
    if pooling not in _SUPPORTED[kind]:
        raise ValueError(
            f"pooling {pooling!r} does not apply to a {kind} LM; use one of {sorted(_SUPPORTED[kind])}"
        )
    return pooling  # type: ignore[return-value]


def mean_at_positions(hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Average ``hidden`` (batch, length, dim) over the True cells of ``positions`` (batch, length).

    Accumulates in float32 so bf16 models pool as precisely as fp32 ones.
    """
    if not bool(positions.any(dim=1).all()):
        raise RuntimeError("internal error: a row has no position to pool")
    weights = positions.to(torch.float32).unsqueeze(-1)
    summed = (hidden.to(torch.float32) * weights).sum(dim=1)
    return summed / weights.sum(dim=1)
