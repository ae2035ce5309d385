"""Batching: token ids of many prompts into padded tensors the model runs on.

Batches are cut by size in tokens, not only in rows, so short texts go many to a
batch and long ones few; sorting by length keeps padding small.  For several
instructions a causal LM can share each text's prompt prefix: a prefix batch
holds the shared part once and each instruction's suffix separately.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "PrefixBatch",
    "PromptBatch",
    "chunks",
    "common_prefix_length",
    "length_batches",
    "pad",
]


@dataclass
class PromptBatch:
    """Padded prompts of similar length plus each row's unpadded length."""

    indices: list[int]
    """Positions of these rows in the caller's input list."""
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    lengths: list[int]


@dataclass
class PrefixBatch:
    """Texts' shared prompt prefixes (left-padded) and, per instruction, the rest (right-padded)."""

    indices: list[int]
    prefix_ids: torch.Tensor
    prefix_mask: torch.Tensor
    suffixes: list[tuple[torch.Tensor, torch.Tensor]]
    """(input_ids, attention_mask) per instruction, in the caller's order."""


def length_batches(lengths: Sequence[int], max_rows: int, max_tokens: int) -> Iterator[list[int]]:
    """Indices, longest first, in batches of at most ``max_rows`` rows and ``max_tokens`` padded tokens."""
    order = [int(i) for i in np.argsort([-n for n in lengths], kind="stable")]
    start = 0
    while start < len(order):
        width = max(lengths[order[start]], 1)  # the widest row of the batch comes first
        rows = max(1, min(max_rows, max_tokens // width))
        yield order[start : start + rows]
        start += rows


def chunks(items: Iterator[str], size: int) -> Iterator[list[str]]:
    """Consecutive lists of at most ``size`` items, reading ``items`` only as far as needed."""
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def common_prefix_length(rows: Sequence[Sequence[int]], cap: int) -> int:
    """Length of the longest run of ids every row starts with, at most ``cap``."""
    length = 0
    while length < cap and all(row[length] == rows[0][length] for row in rows):
        length += 1
    return length


def pad(rows: Sequence[Sequence[int]], pad_id: int, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, mask) of ``rows`` padded to the longest, on the left or the right."""
    width = max((len(row) for row in rows), default=0)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[index, span] = torch.tensor(row, dtype=torch.long)
        mask[index, span] = 1
    return ids, mask
