"""The paper's metrics, each small enough to check by hand."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "clustering_v_measure",
    "cosine_similarity_rows",
    "harmonic_mean",
    "nearest_neighbour_accuracy",
    "robustness",
    "spearman",
    "sts_spearman",
    "triplet_success_rate",
]


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.clip(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12, None)


def cosine_similarity_rows(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cosine similarity of row i of ``left`` with row i of ``right``."""
    return (_unit(left) * _unit(right)).sum(axis=-1)


def triplet_success_rate(anchor: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    """Share of triplets whose anchor is closer (cosine) to the positive than to the negative."""
    return float(np.mean(cosine_similarity_rows(anchor, positive) > cosine_similarity_rows(anchor, negative)))


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    from scipy.stats import rankdata

    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def sts_spearman(first: np.ndarray, second: np.ndarray, scores: Sequence[float]) -> float:
    """Instruction-conditioned STS: Spearman between pair cosines and gold scores."""
    return spearman(cosine_similarity_rows(first, second), scores)


def clustering_v_measure(vectors: np.ndarray, labels: Sequence[object], seed: int = 0) -> float:
    """V-measure of a fixed-seed MiniBatchKMeans with as many clusters as gold labels (as in MTEB)."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import v_measure_score

    k = len(set(labels))
    model = MiniBatchKMeans(
        n_clusters=k,
        batch_size=max(32, len(labels)),
        n_init=3,  # pyright: ignore[reportArgumentType]  # sklearn is unannotated: pyright infers str from "auto"
        random_state=seed,
    )
    predicted = model.fit_predict(_unit(vectors))
    return float(v_measure_score(labels, predicted))


def nearest_neighbour_accuracy(vectors: np.ndarray, labels: Sequence[object]) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy (cosine).

    Does each text's closest other text share its label?  Unlike 2-means clustering, this
    shows whether the label is encoded at all, even when another signal dominates.
    """
    unit = _unit(vectors)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(axis=1)
    return float(np.mean([labels[i] == labels[j] for i, j in enumerate(nearest)]))


def harmonic_mean(*values: float) -> float:
    """Harmonic mean; 0 if any value is 0 or below (a suite that fails one side fails)."""
    if not values or min(values) <= 0:
        return 0.0
    return float(len(values) / sum(1.0 / value for value in values))


def robustness(
    correct: Sequence[float], implicit: Sequence[float], incorrect: Sequence[float]
) -> dict[str, float]:
    """Scores under correct, implicit (paraphrased) and incorrect instructions.

    ``dci`` = mean(correct) - mean(incorrect): how much the right question helps;
    ``dii`` = mean(implicit) - mean(incorrect): how much of that survives paraphrase.
    """
    c, i, w = (float(np.mean(values)) for values in (correct, implicit, incorrect))
    return {"correct": c, "implicit": i, "incorrect": w, "dci": c - w, "dii": i - w}
