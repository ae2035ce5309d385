"""The wide build: the span and judgement families beside the twelve of :mod:`.data`, and the caps
that keep any one family, and any one answer within a family, from crowding out the rest.

One pass of spaCy's whole small pipeline over the real texts gives both the entity labels the
older families read (:func:`.labellers.entity_labels_of`) and the labels of :mod:`.spans`, so the
wide build parses each text once.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol, TypeVar

from .. import labellers
from . import spans
from .families import family_questions, share_cap
from .sources import SourceText

__all__ = [
    "ANSWER_BY",
    "MAX_ANSWER_SHARE",
    "MAX_FAMILY_SHARE",
    "WideLabels",
    "cap_answers",
    "cap_families",
    "label_texts",
    "wide_rows",
]

logger = logging.getLogger(__name__)

#: no family of a wide build holds more than this share of its rows
MAX_FAMILY_SHARE = 0.04
#: within a span family no answer holds more than this share of the family (judgement families are
#: capped by value as they are asked: :data:`.families.MAX_JUDGEMENT_SHARE`)
MAX_ANSWER_SHARE = 0.15
#: who answered each judgement family (the span families: spaCy, or a regex for web addresses)
ANSWER_BY = {
    "sentence_type": "rule",
    "quotation": "rule",
    "length": "rule",
    "web_address": "rule",
    "opinion_fact": "source",
    "intensity": "vader",
}


class _Row(Protocol):
    @property
    def family(self) -> str: ...
    @property
    def output(self) -> str: ...


Row = TypeVar("Row", bound=_Row)


WideLabels = tuple[list[dict[str, str]], list[dict[str, str]]]


def label_texts(texts: Sequence[SourceText], batch_size: int = 64) -> WideLabels:
    """(older entity labels, span and judgement labels) of every text, from one parse each; texts
    too long for the parse families skip the parser (a third of the time)."""
    short = [i for i, text in enumerate(texts) if len(text.text.split()) <= spans.MAX_PARSED_TOKENS]
    long = sorted(set(range(len(texts))) - set(short))
    entities: list[dict[str, str]] = [{} for _ in texts]
    labels: list[dict[str, str]] = [{} for _ in texts]
    done = 0
    for positions, parse in ((short, True), (long, False)):
        docs = spans.full_pipeline(parse).pipe((texts[i].text for i in positions), batch_size=batch_size)
        for position, doc in zip(positions, docs, strict=True):
            text = texts[position]
            entities[position] = labellers.entity_labels_of(doc)
            compound = labellers.sentiment_scorer().polarity_scores(text.text)["compound"]
            labels[position] = spans.span_labels(doc) | spans.judgement_labels(doc, text.labels, compound)
            done += 1
            if done % 2000 == 0:
                logger.info("parsed %d of %d texts", done, len(texts))
    return entities, labels


def wide_rows(
    texts: Sequence[SourceText], labels: list[dict[str, str]], rng: random.Random, make: Callable[..., Any]
) -> list[Any]:
    """One row for every question :func:`.families.family_questions` asks of the texts."""
    return [
        make(
            question.instruction,
            texts[position].text,
            question.answer,
            texts[position].source,
            ANSWER_BY.get(question.family, "spacy"),
            question.family,
        )
        for position, question in family_questions(labels, rng)
    ]


def _capped(groups: dict[str, list[Row]], share: float, rng: random.Random) -> list[Row]:
    cap = share_cap([len(group) for group in groups.values()], share)
    kept: list[Row] = []
    for key in sorted(groups):
        group = groups[key]
        kept.extend(group if len(group) <= cap else rng.sample(group, cap))
    return kept


def cap_answers(rows: list[Row], families: Collection[str], rng: random.Random) -> list[Row]:
    """Rows of ``families`` with no answer over ``MAX_ANSWER_SHARE`` of the family (case-insensitive);
    other rows untouched."""
    by_family: dict[str, dict[str, list[Row]]] = {}
    kept = []
    for row in rows:
        name = row.family
        if name in families:
            by_family.setdefault(name, {}).setdefault(row.output.lower(), []).append(row)
        else:
            kept.append(row)
    for name in sorted(by_family):
        kept.extend(_capped(by_family[name], MAX_ANSWER_SHARE, rng))
    return kept


def cap_families(rows: list[Row], share: float, rng: random.Random) -> list[Row]:
    """At most ``share`` of the rows in any one family (the largest families are cut to one size)."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.family, []).append(row)
    kept = _capped(groups, share, rng)
    rng.shuffle(kept)
    logger.info("families: %s", dict(sorted(Counter(row.family for row in kept).items())))
    return kept
