"""Crossed triplets over texts that carry two independent labels.

Under the question about label A, the positive shares the anchor's A and differs in B,
and the negative shares B and differs in A.  Under the question about B the roles swap.
An embedder that ignores the question ranks the same pairs the same way under both, so
it cannot score high under both questions: only following the question wins both.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

__all__ = [
    "Triplet",
    "crossed_triplets",
]


Triplet = tuple[int, int, int]


def _pools(asked: Sequence[str], other: Sequence[str]) -> dict[int, tuple[list[int], list[int]]]:
    """Anchor -> (positives, negatives) for every anchor that has at least one of each."""
    by_asked: dict[str, list[int]] = defaultdict(list)
    by_other: dict[str, list[int]] = defaultdict(list)
    for index, (a, b) in enumerate(zip(asked, other, strict=True)):
        by_asked[a].append(index)
        by_other[b].append(index)
    pools = {}
    for index, (a, b) in enumerate(zip(asked, other, strict=True)):
        positives = [j for j in by_asked[a] if other[j] != b]
        negatives = [j for j in by_other[b] if asked[j] != a]
        if positives and negatives:
            pools[index] = (positives, negatives)
    return pools


def crossed_triplets(asked: Sequence[str], other: Sequence[str], count: int, seed: int = 0) -> list[Triplet]:
    """Up to ``count`` distinct (anchor, positive, negative) index triplets, fixed by ``seed``.

    positive: same ``asked`` label as the anchor, different ``other`` label;
    negative: different ``asked`` label, same ``other`` label.
    """
    pools = _pools(asked, other)
    anchors = sorted(pools)
    if not anchors:
        return []
    rng, chosen = random.Random(seed), dict[Triplet, None]()
    for _ in range(count * 20):
        if len(chosen) >= count:
            break
        anchor = rng.choice(anchors)
        positives, negatives = pools[anchor]
        chosen[(anchor, rng.choice(positives), rng.choice(negatives))] = None
    return list(chosen)
