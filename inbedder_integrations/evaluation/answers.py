"""Free answers mapped to label values, so answer agreement can be measured.

``engine.answer`` returns short free text ("happy", "football", "the UK").  Each mapping
here is small and written out, so a reader can see exactly what counts as agreeing:
an answer that maps to nothing, or to two values at once, counts as wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from ..errors import InvalidArgumentError
from .places import country_of_answer

__all__ = [
    "NEGATIONS",
    "NEGATIVE",
    "POSITIVE",
    "TOPICS",
    "agreement",
    "canonical_place",
    "canonical_sentiment",
    "canonical_topic",
]


def _set(words: str) -> frozenset[str]:
    """A word set written as one string, to keep the lists readable."""
    return frozenset(words.split())


POSITIVE = _set(
    "positive good happy great excellent love loved joy joyful pleased delighted glad optimistic"
    " wonderful favourable favorable enjoyable fun funny praise satisfied hopeful excited amazing"
    " brilliant fantastic best beautiful impressive charming moving entertaining"
)
NEGATIVE = _set(
    "negative bad sad angry terrible awful poor disappointed disappointing boring hate hated worst"
    " unhappy upset frustrated fear afraid anger sadness disgust disgusted annoyed dull mediocre"
    " pessimistic unfavourable unfavorable critical tedious weak dreadful horrible worried"
)
NEGATIONS = frozenset({"not", "no", "never", "isn't", "wasn't", "hardly"})

TOPICS: Mapping[str, frozenset[str]] = {
    "sports": _set(
        "sport sports football soccer tennis rugby cricket athletics golf boxing olympics olympic"
        " racing formula marathon match championship league cup player players team coach"
    ),
    "business": _set(
        "business economy economic economics finance financial market markets stock stocks shares"
        " company companies trade bank banking money oil industry profit profits sales investment"
        " corporate growth inflation jobs"
    ),
    "politics": _set(
        "politics political election elections government parliament labour tory tories conservative"
        " party parties policy minister ministers vote voting campaign democracy law immigration"
    ),
    "tech": _set(
        "technology tech computer computers computing software internet web online digital mobile"
        " phone phones gadget gadgets broadband gaming video-games console science net email virus spam"
    ),
    "entertainment": _set(
        "entertainment film films movie movies cinema music tv television celebrity celebrities award"
        " awards oscar oscars arts art actor actress band album singer show theatre comedy"
    ),
}
"""Topic label (the BBC folder name) -> words an answer may use for it."""


def _words(answer: str) -> list[str]:
    return re.findall(r"[a-z][a-z'-]*", answer.lower())


def canonical_sentiment(answer: str) -> str | None:
    """'positive', 'negative', or None; a negation just before a word flips it ('not good')."""
    found = set()
    words = _words(answer)
    for index, word in enumerate(words):
        value = "positive" if word in POSITIVE else "negative" if word in NEGATIVE else None
        if value and index and words[index - 1] in NEGATIONS:
            value = "negative" if value == "positive" else "positive"
        if value:
            found.add(value)
    return found.pop() if len(found) == 1 else None


def canonical_topic(answer: str) -> str | None:
    """The BBC topic whose keywords the answer uses; None if none or several."""
    words = set(_words(answer))
    found = [topic for topic, keywords in TOPICS.items() if words & keywords]
    return found[0] if len(found) == 1 else None


def canonical_place(answer: str) -> str | None:
    """The country the answer names, through the same gazetteer that made the labels."""
    return country_of_answer(answer)


def agreement(answers: Sequence[str], labels: Sequence[str], canonical: Callable[[str], str | None]) -> float:
    """Share of answers whose canonical value equals the label (unmappable answers are wrong)."""
    if len(answers) != len(labels):
        raise InvalidArgumentError(f"{len(answers)} answers for {len(labels)} labels")
    if not labels:
        return float("nan")
    return sum(canonical(answer) == label for answer, label in zip(answers, labels, strict=True)) / len(
        labels
    )
