"""Cluster one corpus under several instructions, name the clusters and score them.

The same texts fall into different groups depending on the question asked of
them.  :func:`cluster_corpus` embeds a corpus under each instruction, clusters
it (k-means or agglomerative, ``k`` given or chosen from the silhouette and the
model's own answers, :mod:`.kchoice`), names every cluster (:mod:`.names`), scores
the clusters against gold labels where there are any, and projects the vectors
to 2-D for a picture (:mod:`.report` draws it).  The job's size is known before
it starts, so one progress bar with a fixed total covers it (:func:`job_steps`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from ..validation import validate_instruction, validate_texts
from .answers import CachedAnswers, _Steps
from .corpora import LabelledCorpus
from .kchoice import ANSWER_SAMPLE, K_RULES, KChoice, answer_sample, choose_k
from .names import NO_ANSWER, Cluster, answer_group_labels, name_clusters

if TYPE_CHECKING:
    from ..engine import InBedder

from ..errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "CLUSTER_METHODS",
    "ClusteringReport",
    "InstructionClusters",
    "cluster_corpus",
    "cluster_vectors",
    "job_steps",
    "label_metrics",
]

logger = logging.getLogger(__name__)

CLUSTER_METHODS = ("kmeans", "agglomerative")
K_RANGE = (2, 10)
MAX_NEW_TOKENS = 8
"""Tokens per answer: a short answer names a cluster; generating costs per token."""
#: ``progress(done, total)``: the job's steps so far and its fixed total
ProgressCallback = Callable[[int, int], None]


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
    k_choice: dict[str, Any] = field(default_factory=dict)
    """How k was chosen and on what evidence (:class:`.kchoice.KChoice`)."""

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
    labels_from: str | None = None
    """What the gold labels are (say, "folder names"): every label score is against them."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each stage: vectors, sample answers, clustering, naming, total."""
    answers: dict[str, int] = field(default_factory=dict)
    """Answers generated, read from the cache file, and reused within the run."""

    def labels_note(self) -> str:
        """One line that says what the label scores are measured against, or that there are none."""
        if self.labels is None:
            return "No gold labels: only the silhouette (of the vectors, under each instruction) is shown."
        kinds = sorted(set(self.labels))
        shown = ", ".join(kinds[:8]) + (", ..." if len(kinds) > 8 else "")
        source = self.labels_from or "the labels given"
        return (
            f"v_measure, nmi and ari are measured against {source} ({len(kinds)} labels: {shown}), "
            "the same labels under every instruction: a low score under an instruction that asks "
            "something else is expected, not a fault."
        )

    def metrics_table(self) -> str:
        """One markdown row per instruction: k, how it was chosen, every metric and what it is against."""
        names = list(self.results[0].metrics) if self.results else []
        against = "labels" if self.labels is not None else None
        lines = [
            "| instruction | k | k chosen by | "
            + " | ".join(names)
            + (" | scored against |" if against else " |"),
            "|---|---:|---|" + "---:|" * len(names) + ("---|" if against else ""),
        ]
        for result in self.results:
            cells = " | ".join(f"{result.metrics[name]:.3f}" for name in names)
            rule = result.k_choice.get("rule", "given")
            tail = f" | {self.labels_from or 'labels given'} |" if against else " |"
            lines.append(f"| {result.instruction} | {result.k} | {rule} | {cells}{tail}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> ClusteringReport:
        """A report read back from ``clusters.json``: redraw or rewrite it without the model."""
        fields = dict(saved)
        results = []
        for result in fields.pop("results"):
            result = dict(result)
            result["clusters"] = [
                Cluster(**{**c, "answers": [tuple(a) for a in c["answers"]]}) for c in result["clusters"]
            ]
            result["coordinates"] = [tuple(xy) for xy in result["coordinates"]]
            results.append(InstructionClusters(**result))
        return cls(**fields, results=results)


def cluster_vectors(
    vectors: np.ndarray,
    *,
    k: int | None = None,
    method: str = "kmeans",
    seed: int = 0,
    k_range: tuple[int, int] = K_RANGE,
) -> tuple[np.ndarray, int]:
    """Cluster unit vectors; with ``k=None`` the ``k`` in ``k_range`` with the best silhouette wins.

    (Vectors alone: :func:`cluster_corpus` also weighs the model's answers, :mod:`.kchoice`.)
    """
    _check_settings(len(vectors), k, method)
    if k is not None:
        return _fit(vectors, k, method, seed), k
    fitted, silhouettes = candidate_clusterings(vectors, method=method, seed=seed, k_range=k_range)
    chosen = choose_k(fitted, silhouettes).k
    return fitted[chosen], chosen


def candidate_clusterings(
    vectors: np.ndarray, *, method: str = "kmeans", seed: int = 0, k_range: tuple[int, int] = K_RANGE
) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """Each k in ``k_range`` (up to n - 1) fitted, with its cosine silhouette.

    A k that puts every text in one cluster is dropped.
    """
    from sklearn.metrics import silhouette_score

    fitted: dict[int, np.ndarray] = {}
    silhouettes: dict[int, float] = {}
    for candidate in range(k_range[0], min(k_range[1], len(vectors) - 1) + 1):
        assignments = _fit(vectors, candidate, method, seed)
        if len(set(assignments.tolist())) < 2:
            continue
        fitted[candidate] = assignments
        silhouettes[candidate] = float(silhouette_score(vectors, assignments, metric="cosine"))
    return fitted, silhouettes


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


def job_steps(
    texts: int,
    instructions: int,
    *,
    embedded: int,
    k: int | None,
    name: bool,
    k_rule: str = "answers",
    sample: int = ANSWER_SAMPLE,
    k_range: tuple[int, int] = K_RANGE,
) -> dict[str, int]:
    """The steps of a clustering job, known before it starts: what a progress bar's total is.

    ``embedded``: instructions whose vectors are computed (or read from the cache);
    a vector is one step.  Each answer of the sample (:func:`.kchoice.answer_sample`)
    is one step; naming is allotted one step per cluster (the most k can be, when
    it is chosen), its question about a whole cluster: steps it does not use are
    passed at the end of each instruction's naming, so the total never moves.
    """
    asks = name or (k is None and k_rule == "answers")
    per_naming = (k if k is not None else min(k_range[1], texts - 1)) if name else 0
    return {
        "vectors": texts * embedded,
        "answers": min(texts, sample) * instructions if asks else 0,
        "naming": per_naming * instructions,
    }


def _draw(bar: tqdm, done: int) -> None:
    bar.update(done - bar.n)


class _Job:
    """The job's steps, done so far, against a fixed total: each stage ends at its own mark."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total, self.done, self.mark, self.callback = total, 0, 0, callback

    def stage(self, steps: int) -> None:
        """The next stage has ``steps``; the previous one is passed in full (what it skipped too)."""
        self.reach(self.mark)
        self.mark += steps

    def advance(self, steps: int) -> None:
        self.reach(min(self.mark, self.done + steps))

    def reach(self, done: int) -> None:
        if done > self.done:
            self.done = done
            if self.callback is not None:
                self.callback(self.done, self.total)


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
    progress: ProgressCallback | None = None,
    k_rule: str = "answers",
    sample: int = ANSWER_SAMPLE,
) -> ClusteringReport:
    """Embed, cluster, name and score ``corpus`` under each instruction.

    ``embeddings`` maps an instruction to vectors already computed by this
    engine (say, read back from Chroma with :meth:`InstructedCorpus.embeddings`);
    those instructions are not embedded again.  ``name=False`` names clusters by
    their c-TF-IDF words alone.  With ``k=None``, k is chosen by ``k_rule``:
    ``answers`` (the model's answers for a sample of ``sample`` texts, beside the
    silhouette: :mod:`.kchoice`) or ``silhouette``; it is never set to the
    number of gold labels, so the metrics show what the instruction finds on its own.
    ``progress(done, total)`` is called as the job advances, with a total fixed
    from the start (:func:`job_steps`); ``show_progress`` draws a bar of it instead.
    Answers are kept in the engine's cache like vectors (:mod:`.answers`).
    """
    corpus, instructions = _checked_input(corpus, instructions)
    _check_settings(len(corpus.texts), k, method)
    if k_rule not in K_RULES:
        raise InvalidArgumentError(f"k_rule must be one of {K_RULES}, got {k_rule!r}")
    missing = [q for q in instructions if (embeddings or {}).get(q) is None]
    steps = job_steps(
        len(corpus.texts),
        len(instructions),
        embedded=len(missing),
        k=k,
        name=name,
        k_rule=k_rule,
        sample=sample,
    )
    with tqdm(total=sum(steps.values()), disable=not show_progress, unit="step", desc="cluster") as bar:
        job = _Job(sum(steps.values()), progress or (lambda done, _total: _draw(bar, done)))
        return _run(engine, corpus, instructions, missing, steps, job, embeddings, name=name, k=k,
                    method=method, seed=seed, sample=sample, k_rule=k_rule)  # fmt: skip


def _run(
    engine: InBedder, corpus: LabelledCorpus, instructions: list[str], missing: list[str],
    steps: dict[str, int], job: _Job, embeddings: Mapping[str, np.ndarray] | None, *, name: bool,
    k: int | None, method: str, seed: int, sample: int, k_rule: str,
) -> ClusteringReport:  # fmt: skip
    """The job's stages in order: vectors, the sample's answers, then clustering and naming."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    job.stage(steps["vectors"])
    # One pass for every instruction: each text's prompt prefix is computed once.
    computed = engine.embed_many(corpus.texts, missing, show_progress=_Steps(job.advance)) if missing else {}
    vectors = {
        q: computed[q] if q in computed else _given(engine, corpus, q, embeddings) for q in instructions
    }
    seconds["vectors"] = time.perf_counter() - started
    answers = CachedAnswers(engine, max_new_tokens=MAX_NEW_TOKENS)
    asked = answer_sample(len(corpus.texts), sample, seed) if steps["answers"] else []
    sampled: dict[str, list[str]] = {}
    job.stage(steps["answers"])
    for instruction in instructions if asked else []:
        sampled[instruction] = answers.answer([corpus.texts[i] for i in asked], instruction, job.advance)
    seconds["sample answers"] = time.perf_counter() - started - seconds["vectors"]
    results = []
    for instruction in instructions:
        logger.info("clustering under %r", instruction)
        job.stage(steps["naming"] // len(instructions))
        results.append(
            _cluster_one(
                engine if name else None,
                corpus,
                instruction,
                vectors[instruction],
                k,
                method,
                seed,
                answers,
                asked,
                sampled.get(instruction) if k_rule == "answers" else None,
                job,
                seconds,
            )
        )
    job.reach(job.total)
    seconds["total"] = time.perf_counter() - started
    stats = answers.stats
    return ClusteringReport(
        corpus=corpus.name,
        model=engine.model_name,
        fingerprint=engine.fingerprint,
        method=method,
        texts=list(corpus.texts),
        labels=list(corpus.labels) if corpus.labels is not None else None,
        results=results,
        labels_from=corpus.labels_from if corpus.labels is not None else None,
        seconds={stage: round(value, 2) for stage, value in seconds.items()},
        answers={"computed": stats.computed, "from cache": stats.from_cache, "reused": stats.reused},
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
    engine: InBedder | None, corpus: LabelledCorpus, instruction: str, vectors: np.ndarray, k: int | None,
    method: str, seed: int, answers: CachedAnswers, asked: list[int], sampled: list[str] | None,
    job: _Job, seconds: dict[str, float],
) -> InstructionClusters:  # fmt: skip
    """Cluster (choosing k), score, name and project one instruction's vectors (``engine=None``: names
    from words); ``sampled``: the answers of the texts at ``asked``, evidence for k."""
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    started = time.perf_counter()
    if k is not None:
        assignments, choice = _fit(vectors, k, method, seed), KChoice(k, "given")
    else:
        fitted, silhouettes = candidate_clusterings(vectors, method=method, seed=seed)
        groups = (
            None if sampled is None else [None if g == NO_ANSWER else g for g in answer_group_labels(sampled)]
        )
        choice = choose_k(fitted, silhouettes, asked, groups)
        assignments = fitted[choice.k]
    logger.info("k = %d under %r (%s)", choice.k, instruction, choice.rule)
    metrics = {"silhouette": float(silhouette_score(vectors, assignments, metric="cosine"))}
    if corpus.labels is not None:
        metrics.update(label_metrics(corpus.labels, assignments))
    coordinates = PCA(n_components=2, random_state=seed).fit_transform(vectors)
    seconds["clustering"] = seconds.get("clustering", 0.0) + time.perf_counter() - started
    started = time.perf_counter()
    clusters = name_clusters(
        engine, corpus.texts, vectors, assignments, instruction,
        progress=job.advance, answers=answers if engine is not None else None, askable=asked or None,
    )  # fmt: skip
    seconds["naming"] = seconds.get("naming", 0.0) + time.perf_counter() - started
    return InstructionClusters(
        instruction=instruction,
        k=choice.k,
        assignments=assignments.tolist(),
        clusters=clusters,
        coordinates=[(float(x), float(y)) for x, y in coordinates],
        metrics=metrics,
        k_choice=asdict(choice),
    )
