"""Cluster one corpus under several instructions, name the clusters, and report.

The same texts fall into different groups depending on the question asked of
them.  :func:`cluster_corpus` embeds a corpus under each instruction, clusters
it (k-means or agglomerative, ``k`` given or chosen by silhouette), names every
cluster by the model's most frequent short answer among its members (the
paper's interpretability result) together with the words that set the cluster
apart from the others (class-based TF-IDF, as BERTopic does), scores the
clusters against gold labels where there are any, and projects the vectors to
2-D for a picture.
:func:`write_report` writes that as JSON, markdown, a PNG and one
self-contained HTML page.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .engine import InBedder
from .engine.prompting import validate_instruction, validate_texts

if TYPE_CHECKING:
    from scipy import sparse

logger = logging.getLogger(__name__)

CLUSTER_METHODS = ("kmeans", "agglomerative")
BUILTIN_CORPORA = ("bbc", "polarity", "lee_background")
BBC_INSTRUCTIONS = (
    "What is the topic of this news?",
    "Which country is this news about?",
    "Is the news good or bad for the people involved?",
)
NO_ANSWER = "(no answer)"
NAME_SEPARATOR = " · "
NAME_WORDS = 3
"""c-TF-IDF words shown in a name after the top answer."""
KEPT_WORDS = 5
"""c-TF-IDF words kept per cluster in :attr:`Cluster.words` and shown in the reports."""
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"
"""Words of two or more letters: numbers ("000", "2004") name nothing a reader recognises."""
TITLES = frozenset({"mr", "mrs", "ms", "dr"})
"""Stop words beside sklearn's English list: titles come before names and name no subject."""
MIN_LIFT = 2.0
"""How many times more frequent (relatively) in its cluster than elsewhere a word must be to be named."""
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an)\s+")


@dataclass(frozen=True)
class LabelledCorpus:
    """Texts, with gold labels where the source has them."""

    name: str
    texts: list[str]
    labels: list[str] | None = None

    def as_documents(self) -> list[dict[str, Any]]:
        """Rows for :meth:`InstructedCorpus.index`: id ``<name>-<position>``, the label as metadata."""
        return [
            {
                "text": text,
                "id": f"{self.name}-{position:05d}",
                "metadata": {"label": self.labels[position]} if self.labels else {},
            }
            for position, text in enumerate(self.texts)
        ]


@dataclass(frozen=True)
class Cluster:
    id: int
    size: int
    name: str
    """``"<top answer> · <word>, <word>, <word>"``: see :func:`cluster_name`."""
    answers: list[tuple[str, int]]
    """Up to five distinct answers with how many of the members asked gave each, most first."""
    examples: list[str]
    """The members nearest the centroid (at most three)."""
    words: list[str] = field(default_factory=list)
    """Up to five words that set this cluster apart from the others (c-TF-IDF), best first."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


# ---------------------------------------------------------------------- corpora


def load_corpus(source: str | Path, *, limit: int | None = None, seed: int = 0) -> LabelledCorpus:
    """A built-in corpus (``bbc``, ``polarity``, ``lee_background``) or a folder/JSONL of your own.

    ``limit`` keeps a fixed random sample (for BBC: ``limit // 5`` articles per
    topic).  A folder's labels are its files' first-level subfolder names when
    every file sits in one; a JSONL file's come from a ``label`` field or
    ``metadata.label``.
    """
    from .evaluation import loaders

    if source == "bbc":
        texts, labels = loaders.load_bbc(per_topic=limit // 5 if limit else None, seed=seed)
        return LabelledCorpus("bbc", texts, labels)
    if source == "polarity":
        texts, labels = loaders.load_polarity()
        return _sample(LabelledCorpus("polarity", texts, labels), limit, seed)
    if source == "lee_background":
        path = loaders.package_file("gensim", "test_data/lee_background.cor")
        texts = [line.strip() for line in path.read_text(encoding="latin-1").splitlines() if line.strip()]
        return _sample(LabelledCorpus("lee_background", texts), limit, seed)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file or folder, and not one of {BUILTIN_CORPORA}")
    from .corpus import load_documents

    documents = load_documents(path)
    if path.is_dir():
        folders = [Path(d.id).parts[0] if len(Path(d.id).parts) > 1 else None for d in documents]
        labels = None if None in folders else [str(f) for f in folders]
    else:
        raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        found = [row.get("label", (row.get("metadata") or {}).get("label")) for row in raw]
        labels = None if None in found or len(found) != len(documents) else [str(x) for x in found]
    return _sample(LabelledCorpus(path.stem, [d.text for d in documents], labels), limit, seed)


def instructions_for(corpus: str | Path, given: Sequence[str] | None) -> list[str]:
    """The instructions given, or the built-in ones for ``bbc``; anything else must give some."""
    if given:
        return list(given)
    if corpus == "bbc":
        return list(BBC_INSTRUCTIONS)
    raise ValueError(f"give at least one instruction for {str(corpus)!r} (only bbc has default instructions)")


def _sample(corpus: LabelledCorpus, limit: int | None, seed: int) -> LabelledCorpus:
    if not limit or limit >= len(corpus.texts):
        return corpus
    keep = sorted(random.Random(seed).sample(range(len(corpus.texts)), limit))
    labels = [corpus.labels[i] for i in keep] if corpus.labels else None
    return LabelledCorpus(corpus.name, [corpus.texts[i] for i in keep], labels)


# ---------------------------------------------------------------------- clustering


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
        raise ValueError("every candidate k put all texts in one cluster (are the texts identical?)")
    return best[1], best[2]


def _check_settings(n: int, k: int | None, method: str) -> None:
    if method not in CLUSTER_METHODS:
        raise ValueError(f"method must be one of {CLUSTER_METHODS}, got {method!r}")
    if n < 3:
        raise ValueError(f"clustering needs at least 3 texts, got {n}")
    if k is not None and (not isinstance(k, int) or not 2 <= k < n):
        raise ValueError(f"k must be an int from 2 to {n - 1} (the number of texts - 1), got {k!r}")


def _fit(vectors: np.ndarray, k: int, method: str, seed: int) -> np.ndarray:
    if method == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(vectors)
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit_predict(vectors)


def _normalise_answer(answer: str) -> str:
    """Lowercase first line without trailing punctuation or a leading article.

    Why: "The economy.", "economy" and "Economy!" are one answer to a reader, so
    they must count as one when the members vote on a name.
    """
    first_line = answer.strip().splitlines()[0] if answer.strip() else ""
    stripped = re.sub(r"[\s.!?,;:\"']+$", "", first_line.lower()).strip()
    return _LEADING_ARTICLE.sub("", stripped).strip() or NO_ANSWER


def _word_counts(texts_by_class: Sequence[Sequence[str]]) -> tuple[list[str], sparse.csr_matrix]:
    """Word counts per class (rows) over the vocabulary (columns), the classes' texts joined."""
    from scipy import sparse
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    documents = [" ".join(texts) for texts in texts_by_class]
    vectorizer = CountVectorizer(
        lowercase=True, stop_words=sorted(ENGLISH_STOP_WORDS | TITLES), token_pattern=TOKEN_PATTERN
    )
    try:
        counts = vectorizer.fit_transform(documents)
    except ValueError:  # no word left at all: every text is stop words, numbers or blank
        return [], sparse.csr_matrix((len(documents), 0), dtype=np.float64)
    return list(vectorizer.get_feature_names_out()), sparse.csr_matrix(counts, dtype=np.float64)


def _idf(counts: sparse.csr_matrix) -> np.ndarray:
    """``log(1 + A / f)`` per word: see :func:`class_tfidf`."""
    average = counts.sum() / max(counts.shape[0], 1)
    return np.log1p(average / np.maximum(np.asarray(counts.sum(axis=0)).ravel(), 1.0))


def class_tfidf(texts_by_class: Sequence[Sequence[str]]) -> tuple[list[str], sparse.csr_matrix]:
    """Class-based TF-IDF (BERTopic's c-TF-IDF): one row per class, one column per word.

    Why: a cluster's most frequent words are frequent in every cluster and tell
    a reader nothing; c-TF-IDF weighs them against the other clusters.  Each
    class's member texts are joined into one document; ``score = tf * log(1 +
    A / f)`` where ``tf`` is the word's share of the class's words (L1-normalised
    counts, as BERTopic does), ``A`` the average number of words per class and
    ``f`` the word's count across all classes.  Lowercase, English stop words
    and titles ("mr") removed, words of two or more letters.
    """
    from scipy import sparse

    vocabulary, counts = _word_counts(texts_by_class)
    words_per_class = np.asarray(counts.sum(axis=1)).ravel()
    tf = sparse.diags(1.0 / np.maximum(words_per_class, 1.0)) @ counts
    return vocabulary, sparse.csr_matrix(tf @ sparse.diags(_idf(counts)))


def _over_represented(inside: np.ndarray, totals: np.ndarray, words: float, min_lift: float) -> np.ndarray:
    """Is each word's share of one class ``min_lift`` times its share of the other classes?

    ``inside``: the words' counts in the class, which holds ``words`` words in all;
    ``totals``: the same words' counts over all classes.
    """
    outside, words_outside = totals - inside, totals.sum() - words
    # inside / words >= min_lift * outside / words_outside, without dividing by zero.
    return inside * words_outside >= min_lift * outside * words


def distinctive_words(
    texts_by_class: Sequence[Sequence[str]], top: int = KEPT_WORDS, min_lift: float = MIN_LIFT
) -> list[list[str]]:
    """Each class's ``top`` words by c-TF-IDF, best first, ties broken alphabetically.

    Why the lift filter: with few clusters, c-TF-IDF only halves the score of a
    word that is everywhere, so on news "said" (1 word in 100 in every cluster)
    outranks the words that set a cluster apart.  A word is only named when its
    share of the cluster's words is ``min_lift`` times its share of the other
    clusters' words.  Why alphabetical ties: the same clusters get the same
    names on every run and platform.
    """
    vocabulary, counts = _word_counts(texts_by_class)
    idf, totals = _idf(counts), np.asarray(counts.sum(axis=0)).ravel()
    ranked = []
    for row in range(counts.shape[0]):
        start, end = counts.indptr[row], counts.indptr[row + 1]
        columns, found = counts.indices[start:end], counts.data[start:end]
        scores = found / max(found.sum(), 1.0) * idf[columns]
        keep = _over_represented(found, totals[columns], found.sum(), min_lift)
        # Rounding makes scores that differ only by float noise tie, so the word decides.
        order = sorted(
            zip(columns[keep].tolist(), scores[keep].tolist(), strict=True),
            key=lambda pair: (-round(pair[1], 12), vocabulary[pair[0]]),
        )
        ranked.append([vocabulary[column] for column, _ in order][:top])
    return ranked


def cluster_name(answer: str | None, words: Sequence[str], *, fallback: str, top: int = NAME_WORDS) -> str:
    """``"<top answer> · <word>, <word>, <word>"``, or whichever half exists.

    Why both halves: the answer says what the model thinks the cluster is about
    (often one article's view, "chelsea"); the c-TF-IDF words say what its texts
    share and the others lack.  Words already in the answer are skipped, so a
    name never reads "labour · labour, blair, ...".
    """
    said = set(re.findall(r"\w+", answer)) if answer else set()
    shown = [word for word in words if word not in said][:top]
    return NAME_SEPARATOR.join(part for part in (answer, ", ".join(shown)) if part) or fallback


def _answer_counts(answers: Iterable[str], top: int = 5) -> list[tuple[str, int]]:
    """The ``top`` most common answers with their counts; ties broken alphabetically, for repeatable names."""
    return sorted(Counter(answers).items(), key=lambda item: (-item[1], item[0]))[:top]


def _nearest_members(vectors: np.ndarray, assignments: np.ndarray, count: int) -> dict[int, list[int]]:
    """Each cluster's ``count`` members nearest its centroid, nearest first: the ones asked and shown."""
    nearest = {}
    for cluster_id in sorted(set(assignments.tolist())):
        members = np.flatnonzero(assignments == cluster_id)
        order = np.argsort(-(vectors[members] @ vectors[members].mean(axis=0)), kind="stable")
        nearest[cluster_id] = members[order[:count]].tolist()
    return nearest


def _ask(
    engine: InBedder, texts: Sequence[str], indices: Sequence[int], instruction: str, max_new_tokens: int
) -> dict[int, str]:
    """The normalised answer of each text asked, by its index (one batched call)."""
    answers = engine.answer([texts[i] for i in indices], instruction, max_new_tokens=max_new_tokens)
    return dict(zip(indices, (_normalise_answer(answer) for answer in answers), strict=True))


def name_clusters(
    engine: InBedder | None,
    texts: Sequence[str],
    vectors: np.ndarray,
    assignments: np.ndarray,
    instruction: str,
    *,
    members_asked: int = 8,
    max_new_tokens: int = 8,
) -> list[Cluster]:
    """Name each cluster by its members' top answer and the words that set it apart.

    Only the ``members_asked`` members nearest the centroid are asked, which keeps
    naming cheap on large corpora; the c-TF-IDF words come from every member's
    text.  With ``engine=None`` (or when no member gives an answer) the name is
    the words alone.  The three members nearest the centroid are the examples.
    """
    nearest = _nearest_members(vectors, assignments, members_asked)
    asked = [index for indices in nearest.values() for index in indices]
    answer_of = _ask(engine, texts, asked, instruction, max_new_tokens) if engine is not None else {}
    members = {cluster_id: np.flatnonzero(assignments == cluster_id) for cluster_id in nearest}
    words = distinctive_words([[texts[i] for i in members[cluster_id]] for cluster_id in nearest])
    clusters = []
    for (cluster_id, indices), cluster_words in zip(nearest.items(), words, strict=True):
        answers = _answer_counts(answer_of[i] for i in indices if i in answer_of)
        top_answer = next((answer for answer, _ in answers if answer != NO_ANSWER), None)
        name = cluster_name(top_answer, cluster_words, fallback=f"cluster {cluster_id}")
        logger.debug("cluster %d under %r: %r", cluster_id, instruction, name)
        clusters.append(
            Cluster(
                id=cluster_id,
                size=len(members[cluster_id]),
                name=name,
                answers=answers,
                examples=[texts[i] for i in indices[:3]],
                words=cluster_words,
            )
        )
    return clusters


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
    if not isinstance(corpus, LabelledCorpus):
        corpus = LabelledCorpus("texts", validate_texts(corpus))
    if isinstance(instructions, str) or not instructions:
        raise TypeError("instructions must be a non-empty list of strings")
    instructions = [validate_instruction(x, f"instructions[{i}]") for i, x in enumerate(instructions)]
    if corpus.labels is not None and len(corpus.labels) != len(corpus.texts):
        raise ValueError(f"{len(corpus.labels)} labels for {len(corpus.texts)} texts")
    _check_settings(len(corpus.texts), k, method)
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    results = []
    for instruction in instructions:
        if show_progress:
            print(f"clustering under {instruction!r}", flush=True)
        vectors = (embeddings or {}).get(instruction)
        if vectors is None:
            vectors = engine.embed(corpus.texts, instruction, show_progress=show_progress)
        elif vectors.shape != (len(corpus.texts), engine.dim):
            raise ValueError(
                f"embeddings[{instruction!r}] has shape {vectors.shape}, "
                f"expected {(len(corpus.texts), engine.dim)}"
            )
        assignments, chosen_k = cluster_vectors(vectors, k=k, method=method, seed=seed)
        metrics = {"silhouette": float(silhouette_score(vectors, assignments, metric="cosine"))}
        if corpus.labels is not None:
            metrics.update(label_metrics(corpus.labels, assignments))
        clusters = name_clusters(engine if name else None, corpus.texts, vectors, assignments, instruction)
        coordinates = PCA(n_components=2, random_state=seed).fit_transform(vectors)
        results.append(
            InstructionClusters(
                instruction=instruction,
                k=chosen_k,
                assignments=assignments.tolist(),
                clusters=clusters,
                coordinates=[(float(x), float(y)) for x, y in coordinates],
                metrics=metrics,
            )
        )
    return ClusteringReport(
        corpus=corpus.name,
        model=engine.model_name,
        fingerprint=engine.fingerprint,
        method=method,
        texts=list(corpus.texts),
        labels=list(corpus.labels) if corpus.labels is not None else None,
        results=results,
    )


# ---------------------------------------------------------------------- output


def plot_maps(report: ClusteringReport, path: str | Path) -> Path:
    """One 2-D map per instruction, side by side, coloured by cluster and labelled by name."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        from .instructed import missing_extra

        raise missing_extra("recipes", "matplotlib") from exc

    panels = len(report.results)
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 5.2), squeeze=False)
    colours = plt.get_cmap("tab10")
    for axis, result in zip(axes[0], report.results, strict=True):
        points = np.asarray(result.coordinates)
        assignments = np.asarray(result.assignments)
        for cluster in result.clusters:
            members = assignments == cluster.id
            axis.scatter(
                points[members, 0],
                points[members, 1],
                s=14,
                alpha=0.75,
                color=colours(cluster.id % 10),
                label=f"{_shorten(cluster.name, 44)} ({cluster.size})",
            )
        subtitle = ", ".join(f"{k} {v:.2f}" for k, v in result.metrics.items() if k != "silhouette")
        axis.set_title(f"{_shorten(result.instruction, 48)}\n{subtitle}", fontsize=10)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.legend(fontsize=7, loc="best", framealpha=0.8)
    figure.suptitle(f"{report.corpus}: {len(report.texts)} texts, one map per instruction", fontsize=12)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def html_report(report: ClusteringReport, png: bytes) -> str:
    """A self-contained page: metrics, the maps (embedded), and each cluster's name and examples."""
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>InBedder clusters: {e(report.corpus)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "td.num{text-align:right}.cluster{margin:0.6em 0}.example{color:#444;font-size:90%}</style>",
        "</head><body>",
        f"<h1>{e(report.corpus)}: the same {len(report.texts)} texts under "
        f"{len(report.results)} instructions</h1>",
        f"<p>model <code>{e(report.model)}</code>, fingerprint <code>{e(report.fingerprint)}</code>, "
        f"{e(report.method)} clustering.</p>",
        "<h2>Metrics</h2>",
        _html_metrics(report),
        f"<img alt='2-D maps, one per instruction' style='max-width:100%' "
        f"src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>",
    ]
    for result in report.results:
        parts.append(f"<h2>{e(result.instruction)}</h2><p>k = {result.k}</p>")
        for cluster in sorted(result.clusters, key=lambda c: -c.size):
            answers = ", ".join(f"{e(answer)} ({count})" for answer, count in cluster.answers)
            examples = "".join(f"<li class='example'>{e(_shorten(x, 300))}</li>" for x in cluster.examples)
            parts.append(
                f"<div class='cluster'><b>{e(cluster.name)}</b> ({cluster.size} texts)"
                f"<br>answers: {answers or '-'}<br>distinctive words: {e(', '.join(cluster.words)) or '-'}"
                f"<ul>{examples}</ul></div>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_metrics(report: ClusteringReport) -> str:
    names = list(report.results[0].metrics) if report.results else []
    header = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    rows = "".join(
        f"<tr><td>{html.escape(r.instruction)}</td><td class='num'>{r.k}</td>"
        + "".join(f"<td class='num'>{r.metrics[name]:.3f}</td>" for name in names)
        + "</tr>"
        for r in report.results
    )
    return f"<table><tr><th>instruction</th><th>k</th>{header}</tr>{rows}</table>"


def write_report(report: ClusteringReport, folder: str | Path) -> dict[str, Path]:
    """Write ``clusters.json``, ``clusters.md``, ``clusters.png`` and ``clusters.html`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "clusters.json",
        "markdown": folder / "clusters.md",
        "png": folder / "clusters.png",
        "html": folder / "clusters.html",
    }
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    paths["markdown"].write_text(markdown_report(report), encoding="utf-8")
    plot_maps(report, paths["png"])
    paths["html"].write_text(html_report(report, paths["png"].read_bytes()), encoding="utf-8")
    return paths


def markdown_report(report: ClusteringReport) -> str:
    """The metrics table and every cluster's name, size, top answers and distinctive words."""
    lines = [f"# {report.corpus}: {len(report.texts)} texts, {report.method}", "", report.metrics_table()]
    for result in report.results:
        lines += ["", f"## {result.instruction} (k = {result.k})", ""]
        for cluster in sorted(result.clusters, key=lambda c: -c.size):
            answers = ", ".join(f"{answer} ({count})" for answer, count in cluster.answers) or "-"
            words = ", ".join(cluster.words) or "-"
            lines.append(f"- **{cluster.name}** ({cluster.size} texts): answers {answers}; words {words}")
    return "\n".join(lines) + "\n"
