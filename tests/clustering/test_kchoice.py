"""Choosing k from the silhouette and the model's answers (``clustering.kchoice``).

The rule is arithmetic on vectors and answer labels, so these tests give it points with a known
structure (three well-separated groups in 16 dimensions) instead of loading a model; the command's
own run on real messages is in test_cluster_cli.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from inbedder_integrations.clustering.core import candidate_clusterings
from inbedder_integrations.clustering.kchoice import TIE, choose_k
from inbedder_integrations.errors import InvalidArgumentError

PER_GROUP = 10


def _three_groups(seed: int = 0) -> np.ndarray:
    """30 unit vectors, 10 around each of three orthogonal centres."""
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[:3] * 4.0
    points = np.vstack([centre + rng.normal(scale=0.5, size=(PER_GROUP, 16)) for centre in centres])
    return points / np.linalg.norm(points, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def fitted() -> tuple[np.ndarray, dict[int, np.ndarray], dict[int, float]]:
    vectors = _three_groups()
    candidates, silhouettes = candidate_clusterings(vectors)
    return vectors, candidates, silhouettes


def test_the_answers_choose_the_structure_they_agree_with(fitted):
    vectors, candidates, silhouettes = fitted
    three = ["angry"] * PER_GROUP + ["happy"] * PER_GROUP + ["worried"] * PER_GROUP
    choice = choose_k(candidates, silhouettes, list(range(len(vectors))), three)
    assert choice.rule == "answers" and choice.k == 3 and choice.answer_groups == 3, choice
    assert choice.scores[3]["agreement"] == pytest.approx(1.0), choice.scores[3]


def test_the_answer_groups_break_a_tie_towards_their_number(fitted):
    """Split one group's answers in two words by halves: k = 4 then agrees as well as k = 3 (within
    the tie), and the four answer groups send the choice to 4. This is the known gap of
    docs/recipes.md: synonyms count as groups."""
    vectors, candidates, silhouettes = fitted
    split = ["angry"] * 5 + ["furious"] * 5 + ["happy"] * PER_GROUP + ["worried"] * PER_GROUP
    choice = choose_k(candidates, silhouettes, list(range(len(vectors))), split)
    assert choice.answer_groups == 4, choice
    best = max(score["agreement"] for score in choice.scores.values())
    assert choice.scores[choice.k]["agreement"] >= best - TIE, choice
    tied = [k for k, score in choice.scores.items() if score["agreement"] >= best - TIE]
    assert choice.k == min(tied, key=lambda k: (abs(k - 4), k)), (choice.k, tied)


def test_without_answers_or_with_too_few_the_silhouette_decides(fitted):
    _, candidates, silhouettes = fitted
    alone = choose_k(candidates, silhouettes)
    assert alone.rule == "silhouette" and alone.k == alone.silhouette_k
    sparse = [None] * 20 + ["angry"] * 2 + ["happy"] * 2 + [None] * 6  # 4 of 30 covered
    thin = choose_k(candidates, silhouettes, list(range(30)), sparse)
    assert thin.rule == "silhouette" and thin.coverage == pytest.approx(4 / 30, abs=1e-3), thin


def test_no_candidate_is_refused():
    with pytest.raises(InvalidArgumentError, match="one cluster"):
        choose_k({}, {})
