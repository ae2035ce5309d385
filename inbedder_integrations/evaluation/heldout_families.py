"""The held-out question families (issue 35), and the check that keeps them out of training.

Ten families, fixed by the lead on 2026-12-07 before any run (five dev, five test: the
families are split, not their texts).  Each family asks an attribute A of texts that also
vary in a distractor attribute B, so crossed triplets show whether the question, rather
than the text's most obvious feature, decides the neighbourhood.

No training file may ask any of these attributes, in any wording: :func:`forbidden_instruction`
names the family an instruction asks about (by keyword patterns, deliberately broad: a
false alarm costs a question wording, a miss costs the measurement), and
:func:`forbidden_rows` runs it over a QA file, so a data builder can check its output.

This module imports nothing of the package, so the data builder can use it cheaply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..jsonl import read_jsonl

__all__ = [
    "FAMILIES",
    "FORBIDDEN_PATTERNS",
    "SENTINEL",
    "SPLITS",
    "Family",
    "families_of",
    "forbidden_file_rows",
    "forbidden_instruction",
    "forbidden_rows",
]


@dataclass(frozen=True)
class Family:
    """One held-out family: the attribute asked (A) and the distractor it is crossed with (B)."""

    slug: str
    split: str
    kind: str
    question: str
    """Question A: the attribute whose neighbourhood and answers are measured."""
    values: tuple[str, ...]
    """The label values of A (what an answer is canonicalised to)."""
    other: str
    """The distractor attribute B's name."""
    other_values: tuple[str, ...]
    other_question: str | None
    """Question B, where B has one (triplets are then crossed both ways)."""


SPLITS = ("dev", "test")
SENTINEL = "cuisine"
"""The kind-of-food family of the issue: test split only, never in training or dev."""

FAMILIES: tuple[Family, ...] = (
    Family("time_of_day", "dev", "time", "At what time of day does this happen?",
           ("morning", "afternoon", "evening", "night"),
           "activity", ("running", "cooking", "reading", "shopping"), "What activity is described?"),
    Family("profession", "dev", "category that is not the topic", "What does the person do for a living?",
           ("doctor", "teacher", "chef", "farmer"),
           "mood", ("happy", "sad", "angry", "worried"), "How does the writer feel?"),
    Family("animal_mention", "dev", "yes/no property", "Does the text mention an animal?",
           ("yes", "no"),
           "sentiment", ("positive", "negative"), "Is the text positive or negative?"),
    Family("instrument", "dev", "kind-of inside a domain", "Which musical instrument is played?",
           ("piano", "guitar", "violin", "drums"),
           "venue", ("concert hall", "church", "street", "pub"), "Where does the performance take place?"),
    Family("people_count", "dev", "number", "How many people are involved?",
           ("one", "two", "three", "many"),
           "place", ("beach", "kitchen", "office", "park"), "Where does this take place?"),
    Family("cuisine", "test", "kind-of inside a domain", "What kind of food does the restaurant serve?",
           ("italian", "japanese", "mexican", "indian"),
           "verdict", ("positive", "negative"), "Is the review positive or negative?"),
    Family("language", "test", "language", "Which language is the text written in?",
           ("english", "french", "spanish", "german"),
           "topic", ("sport", "weather", "health", "money"), "What is the topic of the text?"),
    Family("tense", "test", "property of the text itself", "What tense is the sentence written in?",
           ("past", "present", "future"),
           "topic", ("business", "entertainment", "politics", "sports", "tech"),
           "What is the topic of the news?"),
    Family("relationship", "test", "relation between things in it", "How are the two people related?",
           ("siblings", "coworkers", "neighbours", "married couple"),
           "event", ("birthday", "moving house", "power cut", "holiday"), "What event is described?"),
    Family("season", "test", "time", "Which season is it in the text?",
           ("spring", "summer", "autumn", "winter"),
           "activity", ("hiking", "cycling", "gardening", "swimming"), "What activity is described?"),
)  # fmt: skip


def families_of(split: str) -> tuple[Family, ...]:
    """The families of one split, in the fixed order above."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    return tuple(family for family in FAMILIES if family.split == split)


def _words(*alternatives: str) -> re.Pattern[str]:
    """Any of the alternatives as whole words (each may be a regex), case-insensitive."""
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")\b", re.IGNORECASE)


FORBIDDEN_PATTERNS: Mapping[str, re.Pattern[str]] = {
    "season": _words(
        "seasons?", "seasonal", "spring", "summer", "autumn", "winter", "time of (?:the )?year",
        r"(?:which|what) months?",
    ),
    "time_of_day": _words(
        r"times? of (?:the )?day", "what time", "which time", "at what hour", "hours?", "o'?clock",
        "morning", "afternoon", "evening", "night(?:time)?", "daytime", "dawn", "dusk", "noon", "midnight",
    ),
    "profession": _words(
        "professions?", "professional", "occupations?", "jobs?", "careers?", "for a living",
        "works? as", "employment", "employed", "trades?", "vocation", "doctor", "teacher", "chef",
        "farmer", "nurse", "lawyer",
    ),
    "animal_mention": _words(
        "animals?", "pets?", "creatures?", "species", "wildlife", "beasts?", "birds?", "dogs?", "cats?",
        "horses?", "fish",
    ),
    "instrument": _words(
        "instruments?", "instrumental", "music", "musical", "musician", "piano", "guitar", "violin",
        "drums?", "cello", "flute", "saxophone", "trumpet", "orchestra",
    ),
    "people_count": _words(
        "how many", "how much", "number of", "numbers?", "count", "counting", "quantity", "amount",
        "headcount",
    ),
    "cuisine": _words(
        "cuisines?", "foods?", "dish(?:es)?", "restaurants?", "meals?", "menu", "recipes?", "cook(?:ing|ed)?",
        "eat(?:s|en|ing)?", "culinary", "dining", "diner",
    ),
    "tense": _words("tenses?", "past", "future", "present tense", "verbs?", "grammatical", "grammar"),
    "language": _words(
        "languages?", "written in", "tongue", "dialect", "translat\\w*", "english", "french", "spanish",
        "german", "italian", "linguistic",
    ),
    "relationship": _words(
        "related", "relationships?", "relations?", "relatives?", "siblings?", "brothers?", "sisters?",
        "married", "marriage", "spouses?", "husband", "wife", "couple", "colleagues?", "co-?workers?",
        "neighbou?rs?", "friends?", "family", "partners?", "kin",
    ),
}  # fmt: skip
"""Family slug -> words whose presence in an instruction means it asks that family's attribute."""


def forbidden_instruction(instruction: str) -> str | None:
    """The held-out family an instruction asks about (first match, in pattern order), or None.

    Broad on purpose: "Is the text about food?" counts as asking about food, "What time is
    mentioned?" as asking the time.  A training instruction must match none of them.
    """
    for family, pattern in FORBIDDEN_PATTERNS.items():
        if pattern.search(instruction):
            return family
    return None


def forbidden_rows(instructions: Iterable[str]) -> dict[int, str]:
    """Position -> family, for every instruction that asks a held-out family's attribute."""
    found = {}
    for position, instruction in enumerate(instructions):
        family = forbidden_instruction(instruction)
        if family:
            found[position] = family
    return found


def forbidden_file_rows(path: Path) -> dict[int, tuple[str, str]]:
    """Row number -> (family, instruction) in a QA file (JSONL, optionally .gz): empty means clean."""
    instructions = [str(row["instruction"]) for row in read_jsonl(path, text_fields=["instruction"])]
    return {i: (family, instructions[i]) for i, family in forbidden_rows(instructions).items()}
