"""Pooling: which hidden states of the last layer become the embedding.

Every mode is "average the hidden states at these positions"; the modes differ
only in which positions are marked (:func:`mask_positions`, :func:`answer_positions`;
the last prompt token is simply the final column of a left-padded batch):

* ``last_prompt_token`` (causal default, the paper's *fst_gen*): the final prompt
  token, whose state is what the model predicts the answer from.
* ``mask_mean`` (masked default): the mask tokens appended after the prompt.
* ``mean_answer_tokens`` (the paper's *avg_gen*): the states that produced each
  greedily generated answer token, the first of which is the last prompt token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["answer_positions", "mask_positions", "mean_at_positions"]


def mean_at_positions(hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Average ``hidden`` (batch, length, dim) over the True cells of ``positions`` (batch, length).

    Accumulates in float32 so bf16 models pool as precisely as fp32 ones.
    """
    if not bool(positions.any(dim=1).all()):
        raise RuntimeError("internal error: a row has no position to pool")
    weights = positions.to(torch.float32).unsqueeze(-1)
    summed = (hidden.to(torch.float32) * weights).sum(dim=1)
    return summed / weights.sum(dim=1)


def mask_positions(
    lengths: Sequence[int], width: int, answer: int, suffix: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """(rows, width) mask of the ``answer`` mask tokens of right-padded masked-LM prompts.

    Each row of real length ``n`` ends with the masks then ``suffix`` special tokens
    (RoBERTa's ``</s>``), so its masks sit at ``n - suffix - answer`` to ``n - suffix``.
    """
    positions = torch.zeros((len(lengths), width), dtype=torch.bool, device=device)
    for row, length in enumerate(lengths):
        positions[row, length - suffix - answer : length - suffix] = True
    return positions


def answer_positions(generated: torch.Tensor, special_ids: Sequence[int], prompt_width: int) -> torch.Tensor:
    """(rows, prompt_width + answer - 1) mask of the states that produced each answer token.

    The state at the last prompt token predicted the first answer token, and so on;
    a state counts while its prediction is not a special token (the first always
    counts, so an empty answer still pools the last prompt token), and nothing
    counts after the first special token.
    """
    special = torch.tensor(list(special_ids), device=generated.device)
    predicts_content = ~torch.isin(generated, special)
    predicts_content[:, 0] = True
    ended = torch.cumsum(~predicts_content, dim=1) > 0
    predicts_content &= ~ended
    rows, answer_width = generated.shape
    positions = torch.zeros(
        (rows, prompt_width + answer_width - 1), dtype=torch.bool, device=generated.device
    )
    positions[:, prompt_width - 1 :] = predicts_content
    return positions
