"""The offline suites on the fixed dev/test splits of ``assets/eval-splits.json``.

Every suite reads only the texts of one split, so a number says which split it measured:
dev is for choosing, test for reporting (``heldout_families`` splits question families
instead: see :mod:`.family_suite`).  Two suites give each text two independent
labels (a human label and a gazetteer place; a critic's verdict and the movie) and score
crossed triplets under both questions, as the paper's IntentEmotion does; the others
check topic clustering, similarity, nearest-neighbour sentiment, and the answers.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from .answers import (
    agreement,
    canonical_emotion,
    canonical_intent,
    canonical_place,
    canonical_sentiment,
    canonical_topic,
)
from .baselines import Embedder
from .family_suite import FamilyData, heldout_families_suite, load_families
from .loaders import load_bbc_ids, load_lee, load_messages, load_polarity_lines, load_rotten_tomatoes
from .metrics import (
    clustering_v_measure,
    harmonic_mean,
    nearest_neighbour_accuracy,
    spearman,
    triplet_success_rate,
)
from .places import place_label
from .splits import split_ids
from .triplets import crossed_triplets

__all__ = [
    "BBC_FEELING_QUESTIONS",
    "BBC_PLACE_QUESTION",
    "BBC_TOPIC_QUESTION",
    "LEE_QUESTION",
    "MESSAGE_EMOTION_QUESTION",
    "MESSAGE_INTENT_QUESTION",
    "POLARITY_LABELS",
    "POLARITY_QUESTION",
    "RT_LABELS",
    "RT_MOVIE_QUESTION",
    "RT_SENTIMENT_QUESTION",
    "SUITES",
    "EvalData",
    "EvalSizes",
    "TwoLabels",
    "answers_suite",
    "bbc_clustering_suite",
    "bbc_split",
    "bbc_topic_place",
    "check_suites",
    "lee_split",
    "lee_suite",
    "load_eval_data",
    "message_answers_suite",
    "messages_emotion_intent",
    "offline_report",
    "polarity_split",
    "polarity_suite",
    "rt_sentiment_movie",
    "two_label_suite",
]


log = logging.getLogger(__name__)

BBC_TOPIC_QUESTION = "What is the topic of the news?"
BBC_PLACE_QUESTION = "Which country is the news about?"
BBC_FEELING_QUESTIONS = {
    "feel_v": "How does the writer feel?",
    "good_bad_v": "Is the news good or bad for the people involved?",
}
LEE_QUESTION = "What is this news about?"
MESSAGE_EMOTION_QUESTION = "How does the customer feel?"
MESSAGE_INTENT_QUESTION = "What is the customer asking for?"
POLARITY_QUESTION = "Is the reviewer's opinion positive or negative?"
RT_SENTIMENT_QUESTION = "Is the review positive or negative?"
RT_MOVIE_QUESTION = "Which movie is the review about?"
POLARITY_LABELS = {"pos": "positive", "neg": "negative"}
RT_LABELS = {"fresh": "positive", "rotten": "negative"}
SUITES = (
    "bbc_topic_place",
    "rt_sentiment_movie",
    "messages_emotion_intent",
    "bbc",
    "lee",
    "polarity",
    "answers",
    "message_answers",
    "heldout_families",
)
"""Every offline suite, in report order (``inbedder eval --suites`` picks some)."""


@dataclass(frozen=True)
class EvalSizes:
    """How much of each split the suites use; the defaults keep one model's run to minutes on a CPU."""

    bbc_per_topic: int = 30
    bbc_words: int = 150
    """BBC articles are cut to their first words (headline and lead) before labelling and embedding:
    a full article costs ~2.5x as much on a CPU; 0 keeps whole articles (up to the model's max_length)."""
    rt_per_label: int = 2
    triplets: int = 200
    seed: int = 0
    rt_movies: int | None = None
    """At most this many of the split's movies (a fixed subset); None: all of them."""
    answers: int = 100
    """Texts answered per answer check at most (a fixed subset): generating costs more than embedding."""


@dataclass(frozen=True)
class TwoLabels:
    """Texts with two independent labels: metric name -> (question, one label per text)."""

    texts: list[str]
    labels: dict[str, tuple[str, list[str]]]

    def triplets(self, count: int, seed: int) -> dict[str, list[tuple[int, int, int]]]:
        """Crossed triplets per metric: each question's positive shares its label, not the other's."""
        (first, (_, a)), (second, (_, b)) = self.labels.items()
        return {first: crossed_triplets(a, b, count, seed), second: crossed_triplets(b, a, count, seed)}


@dataclass
class EvalData:
    """Everything the suites read for one split, loaded once and shared by every embedder."""

    split: str
    sizes: EvalSizes
    bbc_texts: list[str]
    bbc_topics: list[str]
    lee_texts: list[str]
    lee_pairs: list[tuple[int, int, float]]
    polarity_texts: list[str]
    polarity_labels: list[str]
    two_label: dict[str, TwoLabels]
    triplets: dict[str, dict[str, list[tuple[int, int, int]]]] = field(default_factory=dict)

    @functools.cached_property
    def families(self) -> dict[str, FamilyData]:
        """The held-out question families of this split, loaded only when a suite reads them
        (the test split's ``tense`` family parses BBC articles with spaCy, about a minute)."""
        return load_families(self.split, self.sizes.triplets, self.sizes.seed)

    def describe(self) -> dict[str, Any]:
        """Sizes for report.json, so a reader knows how many texts and triplets each number rests on."""
        loaded = "families" in self.__dict__  # a cached_property, present once read
        families = {"heldout_families": {k: v.describe() for k, v in self.families.items()}} if loaded else {}
        return families | {
            "answers_per_check": self.sizes.answers,
            "bbc_articles": len(self.bbc_texts),
            "lee_documents": len(self.lee_texts),
            "lee_pairs": len(self.lee_pairs),
            "polarity_sentences": len(self.polarity_texts),
            **{
                name: {"texts": len(data.texts), **{k: len(v) for k, v in self.triplets[name].items()}}
                for name, data in self.two_label.items()
            },
        }


# --------------------------------------------------------------------------- data of one split


def _per_group(ids: Sequence[str], group: Callable[[str], str], size: int, seed: int) -> list[str]:
    """At most ``size`` ids per group, a fixed random subset, in id order."""
    groups: dict[str, list[str]] = defaultdict(list)
    for id_ in ids:
        groups[group(id_)].append(id_)
    rng, chosen = random.Random(seed), []
    for key in sorted(groups):
        members = sorted(groups[key])
        chosen += members if size >= len(members) else rng.sample(members, size)
    return sorted(chosen)


def bbc_split(split: str, per_topic: int, seed: int = 0, words: int = 0) -> tuple[list[str], list[str]]:
    """BBC articles of the split (up to ``per_topic`` per topic, cut to ``words`` if > 0) and their topics."""
    ids = _per_group(split_ids("bbc", split), lambda id_: id_.split("/")[0], per_topic, seed)
    texts, topics = load_bbc_ids(ids)
    return ([" ".join(text.split()[:words]) for text in texts] if words else texts), topics


def bbc_topic_place(texts: Sequence[str], topics: Sequence[str]) -> TwoLabels:
    """The articles with a dominant country (gazetteer), labelled with topic and place."""
    places = [place_label(text) for text in texts]
    kept = [i for i, place in enumerate(places) if place]
    return TwoLabels(
        [texts[i] for i in kept],
        {
            "topic": (BBC_TOPIC_QUESTION, [topics[i] for i in kept]),
            "place": (BBC_PLACE_QUESTION, [str(places[i]) for i in kept]),
        },
    )


def rt_sentiment_movie(split: str, per_label: int, seed: int = 0, movies_cap: int | None = None) -> TwoLabels:
    """Critics' reviews of the split's movies: ``per_label`` fresh and rotten ones per movie."""
    names = split_ids("rotten_tomatoes", split)
    if movies_cap is not None and movies_cap < len(names):
        names = random.Random(seed).sample(names, movies_cap)
    movies = set(names)
    rows = [r for r in load_rotten_tomatoes() if r["movie_name"] in movies and r["category"] in RT_LABELS]
    keys = [f"{r['movie_name']}|{r['category']}|{i:05d}" for i, r in enumerate(rows)]
    chosen = _per_group(keys, lambda key: key.rsplit("|", 1)[0], per_label, seed)
    picked = [rows[int(key.rsplit("|", 1)[1])] for key in chosen]
    return TwoLabels(
        [r["text"] for r in picked],
        {
            "sentiment": (RT_SENTIMENT_QUESTION, [RT_LABELS[r["category"]] for r in picked]),
            "movie": (RT_MOVIE_QUESTION, [r["movie_name"] for r in picked]),
        },
    )


def messages_emotion_intent(split: str) -> TwoLabels:
    """The split's hand-written customer messages, labelled with emotion and intent."""
    rows = load_messages(split)
    return TwoLabels(
        [row["text"] for row in rows],
        {
            "emotion": (MESSAGE_EMOTION_QUESTION, [row["emotion"] for row in rows]),
            "intent": (MESSAGE_INTENT_QUESTION, [row["intent"] for row in rows]),
        },
    )


def lee_split(split: str) -> tuple[list[str], list[tuple[int, int, float]]]:
    """The split's Lee documents and the human similarity of every pair inside the split."""
    texts, pairs = load_lee()
    ids = split_ids("lee", split)
    position = {doc: i for i, doc in enumerate(ids)}
    inside = [(position[i], position[j], s) for i, j, s in pairs if i in position and j in position]
    return [texts[doc] for doc in ids], inside


def polarity_split(split: str) -> tuple[list[str], list[str]]:
    """The split's polarity sentences and their labels ('positive' / 'negative')."""
    lines = set(split_ids("polarity", split))
    rows = [(text, POLARITY_LABELS[label]) for line, text, label in load_polarity_lines() if line in lines]
    return [text for text, _ in rows], [label for _, label in rows]


def load_eval_data(split: str = "test", sizes: EvalSizes | None = None) -> EvalData:
    """Load one split for every suite and fix its triplets (same for every embedder)."""
    sizes = sizes or EvalSizes()
    bbc_texts, bbc_topics = bbc_split(split, sizes.bbc_per_topic, sizes.seed, sizes.bbc_words)
    lee_texts, lee_pairs = lee_split(split)
    polarity_texts, polarity_labels = polarity_split(split)
    two_label = {
        "bbc_topic_place": bbc_topic_place(bbc_texts, bbc_topics),
        "rt_sentiment_movie": rt_sentiment_movie(split, sizes.rt_per_label, sizes.seed, sizes.rt_movies),
        "messages_emotion_intent": messages_emotion_intent(split),
    }
    data = EvalData(
        split, sizes, bbc_texts, bbc_topics, lee_texts, lee_pairs, polarity_texts, polarity_labels, two_label
    )
    data.triplets = {name: d.triplets(sizes.triplets, sizes.seed) for name, d in two_label.items()}
    log.info("evaluation data (%s split): %s", split, data.describe())
    return data


# --------------------------------------------------------------------------- suites


def two_label_suite(
    embedder: Embedder, data: TwoLabels, triplets: Mapping[str, Sequence[tuple[int, int, int]]]
) -> dict[str, float]:
    """Triplet success under each question (texts embedded once per question) and the harmonic mean."""
    results = {}
    for metric, rows in triplets.items():
        if not rows:  # too few texts to cross the labels: no number rather than a made-up one
            results[metric] = float("nan")
            continue
        question = data.labels[metric][0]
        used = sorted({i for row in rows for i in row})
        vectors = dict(zip(used, embedder([data.texts[i] for i in used], question), strict=True))
        anchor, positive, negative = (np.stack([vectors[row[k]] for row in rows]) for k in range(3))
        results[metric] = triplet_success_rate(anchor, positive, negative)
    results["hmean"] = harmonic_mean(*results.values())
    return results


def bbc_clustering_suite(
    embedder: Embedder, texts: Sequence[str], topics: Sequence[str], seed: int = 0
) -> dict[str, float]:
    """Topic V-measure under the topic question, and against the same topic labels under feeling
    questions: low there means the vectors stopped encoding the topic when not asked for it."""
    results = {"topic_v": clustering_v_measure(embedder(texts, BBC_TOPIC_QUESTION), topics, seed)}
    for metric, question in BBC_FEELING_QUESTIONS.items():
        results[metric] = clustering_v_measure(embedder(texts, question), topics, seed)
    return results


def lee_suite(
    embedder: Embedder, texts: Sequence[str], pairs: Sequence[tuple[int, int, float]]
) -> dict[str, float]:
    """Spearman between cosine and human similarity over the pairs inside the split."""
    vectors = embedder(texts, LEE_QUESTION)
    cosines = [float(vectors[i] @ vectors[j]) for i, j, _ in pairs]
    return {"spearman": spearman(cosines, [score for _, _, score in pairs])}


def polarity_suite(embedder: Embedder, texts: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """Leave-one-out 1-nearest-neighbour sentiment accuracy under the sentiment question:
    positive evidence that the vectors carry sentiment, which 2-means clustering cannot give."""
    return {"knn_acc": nearest_neighbour_accuracy(embedder(texts, POLARITY_QUESTION), labels)}


def _subset(count: int, limit: int, seed: int) -> list[int]:
    """A fixed random subset of ``range(count)`` of at most ``limit``, in order."""
    return sorted(random.Random(seed).sample(range(count), limit)) if limit < count else list(range(count))


def _answer_check(
    embedder: Embedder,
    texts: Sequence[str],
    question: str,
    labels: Sequence[str],
    canonical: Callable[[str], str | None],
    metric: str,
) -> float | None:
    """Agreement of the answers to ``question`` with ``labels``; None if the model has no answers."""
    answers = embedder.answer(list(texts), question)
    if answers is None:
        return None
    examples = [f"{a!r}->{canonical(a)} ({g})" for a, g in zip(answers[:5], labels, strict=False)]
    log.info("%s, %s answers, e.g. %s", embedder.name, metric, "; ".join(examples))
    return agreement(answers, labels, canonical)


def answers_suite(embedder: Embedder, data: EvalData) -> dict[str, float | None]:
    """How often the model's free answer, canonicalised, agrees with the label; None if it has none."""
    place = data.two_label["bbc_topic_place"]
    rt = data.two_label["rt_sentiment_movie"]
    polarity = (data.polarity_texts, POLARITY_QUESTION, data.polarity_labels, canonical_sentiment)
    checks = {
        "polarity_sentiment": polarity,
        "bbc_topic": (data.bbc_texts, BBC_TOPIC_QUESTION, data.bbc_topics, canonical_topic),
        "bbc_place": (place.texts, BBC_PLACE_QUESTION, place.labels["place"][1], canonical_place),
        "rt_sentiment": (rt.texts, RT_SENTIMENT_QUESTION, rt.labels["sentiment"][1], canonical_sentiment),
    }
    results: dict[str, float | None] = {}
    for metric, (texts, question, labels, canonical) in checks.items():
        chosen = _subset(len(texts), data.sizes.answers, data.sizes.seed)
        picked, gold = [texts[i] for i in chosen], [labels[i] for i in chosen]
        results[metric] = _answer_check(embedder, picked, question, gold, canonical, metric)
    return results


def message_answers_suite(
    embedder: Embedder, data: TwoLabels, limit: int, seed: int
) -> dict[str, float | None]:
    """Answer agreement on (at most ``limit`` of) the hand-written messages under the emotion and
    the intent question: a suite apart from :func:`answers_suite`, so it can be added alone to
    reports measured before it existed."""
    canonical = {"emotion": canonical_emotion, "intent": canonical_intent}
    chosen = _subset(len(data.texts), limit, seed)
    texts = [data.texts[i] for i in chosen]
    return {
        metric: _answer_check(
            embedder, texts, question, [labels[i] for i in chosen], canonical[metric], f"message {metric}"
        )
        for metric, (question, labels) in data.labels.items()
    }


def _suites(data: EvalData) -> dict[str, Callable[[Embedder], dict[str, Any]]]:
    """Suite name -> how to run it on ``data``, in report order."""
    suites: dict[str, Callable[[Embedder], dict[str, Any]]] = {
        name: (lambda e, two=two, rows=data.triplets[name]: two_label_suite(e, two, rows))
        for name, two in data.two_label.items()
    }
    return suites | {
        "bbc": lambda e: bbc_clustering_suite(e, data.bbc_texts, data.bbc_topics, data.sizes.seed),
        "lee": lambda e: lee_suite(e, data.lee_texts, data.lee_pairs),
        "polarity": lambda e: polarity_suite(e, data.polarity_texts, data.polarity_labels),
        "answers": lambda e: answers_suite(e, data),
        "message_answers": lambda e: message_answers_suite(
            e, data.two_label["messages_emotion_intent"], data.sizes.answers, data.sizes.seed
        ),
        "heldout_families": lambda e: heldout_families_suite(e, data.families),
    }


def check_suites(names: Sequence[str]) -> None:
    """Refuse a name that is not in :data:`SUITES`, listing those that are."""
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        raise InvalidArgumentError(f"unknown suites {unknown}; known: {', '.join(SUITES)}")


def offline_report(
    embedders: Sequence[Embedder],
    data: EvalData,
    suites: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every offline suite (or only ``suites``) for every embedder on the same split, texts and triplets.

    ``progress(done, total)``: called after each (embedder, suite) run (the CLI's bar)."""
    check_suites(suites or ())
    runs = {suite: run for suite, run in _suites(data).items() if not suites or suite in suites}
    report: dict[str, dict[str, dict[str, Any]]] = {}
    total = len(embedders) * len(runs)
    if progress is not None:
        progress(0, total)
    for embedder in embedders:
        report[embedder.name] = {}
        for suite, run in runs.items():
            started = time.monotonic()
            report[embedder.name][suite] = run(embedder)
            log.info("%s, %s split, %s: %.0f s", embedder.name, data.split, suite, time.monotonic() - started)
            if progress is not None:
                progress(_done(report), total)
    return report


def _done(report: dict[str, dict[str, dict[str, Any]]]) -> int:
    """(embedder, suite) runs finished so far."""
    return sum(len(suites) for suites in report.values())
