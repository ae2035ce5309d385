"""Cluster one corpus under several instructions, name the clusters and score them.

The same texts fall into different groups depending on the question asked of
them.  :func:`cluster_corpus` embeds a corpus under each instruction, clusters
it (k-means or agglomerative, ``k`` given or chosen by silhouette), names every
cluster (:mod:`.names`), scores the clusters against gold labels where there
are any, and projects the vectors to 2-D for a picture (:mod:`.report` draws it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from ..validation import validate_instruction, validate_texts
from .corpora import LabelledCorpus
from .names import Cluster, name_clusters

if TYPE_CHECKING:
    from ..engine import InBedder

from ..errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "CLUSTER_METHODS",
    "ClusteringReport",
    "InstructionClusters",
    "cluster_corpus",
    "cluster_vectors",
    "label_metrics",
]

logger = logging.getLogger(__name__)

CLUSTER_METHODS = ("kmeans", "agglomerative")


@dataclass(frozen=True)
class InstructionClusters:
    """How the corpus clusters under one instruction."""

    instruction: str
    k: int
    assignments: list[int]
    clusters: list[Cluster]
    coordinates: list[tuple[float, float]]
    """A 2-D PCA projection of each text's vector, for the map."""
    metrics: dict[str, float] = field(default_factory=dict)
    """``silhouette`` always; ``v_measure``, ``nmi`` and ``ari`` against gold labels if given."""

    def cluster_names(self) -> str:
        """The clusters' names with their sizes, largest first: a one-line summary."""
        largest_first = sorted(self.clusters, key=lambda cluster: -cluster.size)
        return ", ".join(f"{cluster.name!r} ({cluster.size})" for cluster in largest_first)


@dataclass(frozen=True)
class ClusteringReport:
    """Everything :func:`write_report` needs, so a report can be rewritten without the model."""

    corpus: str
    model: str
    fingerprint: str
    method: str
    texts: list[str]
    labels: list[str] | None
    results: list[InstructionClusters]

    def metrics_table(self) -> str:
        """One markdown row per instruction: k and every metric."""
        names = list(self.results[0].metrics) if self.results else []
        lines = [
            "| instruction | k | " + " | ".join(names) + " |",
            "|---|---:|" + "---:|" * len(names),
        ]
        for result in self.results:
            cells = " | ".join(f"{result.metrics[name]:.3f}" for name in names)
            lines.append(f"| {result.instruction} | {result.k} | {cells} |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cluster_vectors(
    vectors: np.ndarray,
    *,
    k: int | None = None,
    method: str = "kmeans",
    seed: int = 0,
    k_range: tuple[int, int] = (2, 10),
) -> tuple[np.ndarray, int]:
    """Cluster unit vectors; with ``k=None`` the ``k`` in ``k_range`` with the best silhouette wins."""
    _check_settings(len(vectors), k, method)
    n = len(vectors)
    if k is not None:
        return _fit(vectors, k, method, seed), k
    from sklearn.metrics import silhouette_score

    candidates = range(k_range[0], min(k_range[1], n - 1) + 1)
    best: tuple[float, np.ndarray, int] | None = None
    for candidate in candidates:
        assignments = _fit(vectors, candidate, method, seed)
        if len(set(assignments.tolist())) < 2:
            continue
        score = float(silhouette_score(vectors, assignments, metric="cosine"))
        if best is None or score > best[0]:
            best = (score, assignments, candidate)
    if best is None:
        raise InvalidArgumentError(
            "every candidate k put all texts in one cluster (are the texts identical?)"
        )
    return best[1], best[2]


def _check_settings(n: int, k: int | None, method: str) -> None:
    """Fail before any embedding is computed, naming the setting that is wrong."""
    if method not in CLUSTER_METHODS:
        raise InvalidArgumentError(f"method must be one of {CLUSTER_METHODS}, got {method!r}")
    if n < 3:
        raise InvalidArgumentError(f"clustering needs at least 3 texts, got {n}")
    if k is not None and (not isinstance(k, int) or not 2 <= k < n):
        raise InvalidArgumentError(f"k must be an int from 2 to {n - 1} (the number of texts - 1), got {k!r}")


def _fit(vectors: np.ndarray, k: int, method: str, seed: int) -> np.ndarray:
    if method == "kmeans":
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=k, n_init=10, random_state=seed)  # pyright: ignore[reportArgumentType]  # sklearn is unannotated: pyright infers str from "auto"
        return model.fit_predict(vectors)
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit_predict(vectors)


def label_metrics(labels: Sequence[str], assignments: np.ndarray) -> dict[str, float]:
    """V-measure, NMI and ARI of cluster assignments against gold labels."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score

    return {
        "v_measure": float(v_measure_score(labels, assignments)),
        "nmi": float(normalized_mutual_info_score(labels, assignments)),
        "ari": float(adjusted_rand_score(labels, assignments)),
    }


def cluster_corpus(
    engine: InBedder,
    corpus: LabelledCorpus | Sequence[str],
    instructions: Sequence[str],
    *,
    k: int | None = None,
    method: str = "kmeans",
    seed: int = 0,
    name: bool = True,
    embeddings: Mapping[str, np.ndarray] | None = None,
    show_progress: bool = False,
) -> ClusteringReport:
    """Embed, cluster, name and score ``corpus`` under each instruction.

    ``embeddings`` maps an instruction to vectors already computed by this
    engine (say, read back from Chroma with :meth:`InstructedCorpus.embeddings`);
    those instructions are not embedded again.  ``name=False`` asks the model
    nothing: clusters are named by their c-TF-IDF words alone.  With gold labels and
    ``k=None``, ``k`` is still chosen by silhouette, not set to the number of
    labels: the metrics then show what the instruction finds on its own.
    """
    corpus, instructions = _checked_input(corpus, instructions)
    _check_settings(len(corpus.texts), k, method)
    missing = [q for q in instructions if (embeddings or {}).get(q) is None]
    results = []
    # One bar for the whole job: every vector (the cache's too), then each answer asked.
    total = len(corpus.texts) * len(missing)
    with tqdm(total=total, disable=not show_progress, unit="step", desc="cluster") as bar:
        # One pass for every instruction: each text's prompt prefix is computed once.
        computed = engine.embed_many(corpus.texts, missing, show_progress=bar) if missing else {}
        for instruction in instructions:
            logger.info("clustering under %r", instruction)
            vectors = (
                computed[instruction]
                if instruction in computed
                else _given(engine, corpus, instruction, embeddings)
            )
            namer = engine if name else None
            results.append(_cluster_one(namer, corpus, instruction, vectors, k, method, seed, bar))
    return ClusteringReport(
        corpus=corpus.name,
        model=engine.model_name,
        fingerprint=engine.fingerprint,
        method=method,
        texts=list(corpus.texts),
        labels=list(corpus.labels) if corpus.labels is not None else None,
        results=results,
    )


def _checked_input(
    corpus: LabelledCorpus | Sequence[str], instructions: Sequence[str]
) -> tuple[LabelledCorpus, list[str]]:
    """The corpus and instructions, or an error naming what is wrong before anything is embedded."""
    if not isinstance(corpus, LabelledCorpus):
        corpus = LabelledCorpus("texts", validate_texts(corpus))
    if isinstance(instructions, str) or not instructions:
        raise InvalidTypeError("instructions must be a non-empty list of strings")
    checked = [validate_instruction(x, f"instructions[{i}]") for i, x in enumerate(instructions)]
    if corpus.labels is not None and len(corpus.labels) != len(corpus.texts):
        raise InvalidArgumentError(f"{len(corpus.labels)} labels for {len(corpus.texts)} texts")
    return corpus, checked


def _given(
    engine: InBedder, corpus: LabelledCorpus, instruction: str, embeddings: Mapping[str, np.ndarray] | None
) -> np.ndarray:
    """The vectors given for ``instruction``, checked against the engine's shape."""
    vectors = (embeddings or {})[instruction]
    if vectors.shape != (len(corpus.texts), engine.dim):
        raise InvalidArgumentError(
            f"embeddings[{instruction!r}] has shape {vectors.shape}, "
            f"expected {(len(corpus.texts), engine.dim)}"
        )
    return vectors


def _cluster_one(
    engine: InBedder | None,
    corpus: LabelledCorpus,
    instruction: str,
    vectors: np.ndarray,
    k: int | None,
    method: str,
    seed: int,
    progress: tqdm,
) -> InstructionClusters:
    """Cluster, score, name and project one instruction's vectors (``engine=None``: names from words)."""
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    assignments, chosen_k = cluster_vectors(vectors, k=k, method=method, seed=seed)
    metrics = {"silhouette": float(silhouette_score(vectors, assignments, metric="cosine"))}
    if corpus.labels is not None:
        metrics.update(label_metrics(corpus.labels, assignments))
    coordinates = PCA(n_components=2, random_state=seed).fit_transform(vectors)
    return InstructionClusters(
        instruction=instruction,
        k=chosen_k,
        assignments=assignments.tolist(),
        clusters=name_clusters(engine, corpus.texts, vectors, assignments, instruction, progress=progress),
        coordinates=[(float(x), float(y)) for x, y in coordinates],
        metrics=metrics,
    )
