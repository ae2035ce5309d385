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
    "EMOTIONS",
    "INTENTS",
    "NEGATIONS",
    "NEGATIVE",
    "POSITIVE",
    "TOPICS",
    "agreement",
    "canonical_emotion",
    "canonical_intent",
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

EMOTIONS: Mapping[str, frozenset[str]] = {
    "angry": _set("angry anger furious frustrated frustration annoyed irritated livid outraged mad fuming"),
    "happy": _set(
        "happy happiness pleased delighted glad joy joyful excited grateful thankful thrilled satisfied"
        " cheerful enthusiastic overjoyed"
    ),
    "sad": _set("sad sadness disappointed disappointment upset unhappy heartbroken gutted down miserable"),
    "worried": _set("worried worry anxious anxiety nervous scared afraid fear fearful concerned frightened"),
    "calm": _set("calm neutral relaxed patient composed unconcerned indifferent"),
}
"""Emotion label of the hand-written messages -> words an answer may use for it."""

INTENTS: Mapping[str, frozenset[str]] = {
    "refund": _set("refund refunds refunded reimbursement reimburse money"),
    "cancellation": _set("cancel cancellation cancelling canceling cancelled termination unsubscribe"),
    "order status": _set("status tracking track arrival arrive whereabouts dispatch shipped late lost"),
    "address change": _set("address relocation moving moved postcode"),
    "information": _set("information info details question inquiry enquiry specifications size dimensions"),
}
"""Intent label of the hand-written messages -> words an answer may use for it ('order' and
'delivery' are left out: 'cancel my order' and 'delivery address' use them for other intents)."""


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


def _only_label(words: set[str], table: Mapping[str, frozenset[str]]) -> str | None:
    """The one label whose words ``words`` use; None if none or several."""
    found = [label for label, keywords in table.items() if words & keywords]
    return found[0] if len(found) == 1 else None


def canonical_topic(answer: str) -> str | None:
    """The BBC topic whose keywords the answer uses; None if none or several."""
    return _only_label(set(_words(answer)), TOPICS)


def canonical_emotion(answer: str) -> str | None:
    """The emotion whose words the answer uses; a negated word ('not happy') names none."""
    words = _words(answer)
    kept = {word for index, word in enumerate(words) if not (index and words[index - 1] in NEGATIONS)}
    return _only_label(kept, EMOTIONS)


def canonical_intent(answer: str) -> str | None:
    """The intent whose words the answer uses; None if none or several."""
    return _only_label(set(_words(answer)), INTENTS)


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
