"""The span and judgement families of a wide build: their phrasings, and their questions for texts.

Each family asks for one kind of thing in 3-6 wordings: a span family for a piece of the text
(an entity, a word-list word, the main verb), answered with that piece, plus a yes/no "does the
text mention..." question, answered "no" on texts that mention none; a judgement family for a
property of the whole text, each wording with its own answer words ("Is the text a question?"
-> yes / no). Labels come from :mod:`.spans`. None of these families asks about a held-out
family's attribute (docs/training.md: time of day, season, profession, animals, instruments,
counts, food, the language of the text, tense, relations between people).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .questions import Phrasing, Question
from .spans import AMBIGUOUS, JUDGEMENT_FAMILIES, SPAN_FAMILIES

__all__ = ["FAMILIES", "MAX_JUDGEMENT_SHARE", "MENTION_SHARE", "Family", "family_questions", "share_cap"]

#: the share of a span family's texts asked "does the text mention ...?" (as many "no" rows are added)
MENTION_SHARE = 0.15
#: a judgement family's most common value is asked of no more than this share of its texts
MAX_JUDGEMENT_SHARE = 0.5
YES_NO = {"yes": "yes", "no": "no"}


@dataclass(frozen=True)
class Family:
    """A family's wordings: ``asks`` (answered with the label, or mapped), ``mentions`` (yes/no)."""

    asks: tuple[Phrasing, ...]
    mentions: tuple[str, ...] = ()


def _span(*asks: str, mentions: tuple[str, ...] = ()) -> Family:
    return Family(tuple((ask, None) for ask in asks), mentions)


FAMILIES: dict[str, Family] = {
    "nationality": _span(
        "Which nationality or group is mentioned?",
        "Which nationality is named?",
        "Which national, religious or political group is mentioned?",
        "What group of people is named?",
        mentions=("Does the text mention a nationality?",),
    ),
    "named_event": _span(
        "Which event is mentioned?",
        "What named event does the text refer to?",
        "Which war, disaster or occasion is named?",
        "What event is named in the text?",
        mentions=("Does the text name an event?",),
    ),
    "law": _span(
        "Which law is mentioned?",
        "What law or treaty is named?",
        "Which legal document is referred to?",
        mentions=("Does the text mention a law?",),
    ),
    "money": _span(
        "What sum of money is mentioned?",
        "What sum of money is named?",
        "What price or cost is given?",
        "Which sum of money appears in the text?",
        mentions=("Does the text mention money?",),
    ),
    "percent": _span(
        "What percentage is mentioned?",
        "Which percentage does the text give?",
        "What share in per cent is named?",
        mentions=("Does the text mention a percentage?",),
    ),
    "work_of_art": _span(
        "Which book, film or work of art is named?",
        "What title of a work is mentioned?",
        "Which creative work does the text mention?",
        mentions=("Does the text name a work of art?",),
    ),
    "country": _span(
        "Which country is mentioned?",
        "What country does the text name?",
        "Which nation is named?",
        "Name the country in the text.",
        mentions=("Does the text mention a country?",),
    ),
    "us_state": _span(
        "Which US state is mentioned?",
        "What American state is named?",
        "Which state is named in the text?",
        mentions=("Does the text mention a US state?",),
    ),
    "city": _span(
        "Which city is mentioned?",
        "What city does the text name?",
        "Name the city in the text.",
        "Which town or city is named?",
        mentions=("Does the text mention a city?",),
    ),
    "continent": _span(
        "Which continent is mentioned?",
        "What continent does the text name?",
        "Which part of the world is named?",
        mentions=("Does the text mention a continent?",),
    ),
    "geo_feature": _span(
        "Which region, sea or mountain is mentioned?",
        "What geographical feature is named?",
        "Which river, sea, mountain or region is named?",
        mentions=("Does the text name a region, sea or mountain?",),
    ),
    "action": _span(
        "What is the main action?",
        "What action does the sentence report?",
        "What is being done in the sentence?",
        "Which action is described?",
    ),
    "actor": _span(
        "Who or what does the action?",
        "Who or what acts in the sentence?",
        "Who is doing something in the sentence?",
        "What is the subject of the sentence?",
    ),
    "acted_on": _span(
        "What is acted upon?",
        "Who or what receives the action?",
        "What does the action apply to?",
        "What is the object of the action?",
    ),
    "body_part": _span(
        "Which body part is mentioned?",
        "What part of the body does the text name?",
        "Which part of the body is referred to?",
        mentions=("Does the text mention a body part?",),
    ),
    "sport": _span(
        "Which sport is mentioned?",
        "What sport does the text name?",
        "Which game or sport is named?",
        mentions=("Does the text mention a sport?",),
    ),
    "disease": _span(
        "Which disease is mentioned?",
        "What illness does the text name?",
        "Which medical condition is named?",
        "What disease or illness is referred to?",
        mentions=("Does the text mention a disease?",),
    ),
    "vehicle": _span(
        "Which vehicle is mentioned?",
        "What means of transport is named?",
        "Which vehicle does the text refer to?",
        mentions=("Does the text mention a vehicle?",),
    ),
    "colour": _span(
        "Which colour is mentioned?",
        "What colour does the text name?",
        "Which color appears in the text?",
        mentions=("Does the text mention a colour?",),
    ),
    "clothing": _span(
        "Which piece of clothing is mentioned?",
        "What garment does the text name?",
        "Which item of clothing is referred to?",
        mentions=("Does the text mention clothing?",),
    ),
    "building": _span(
        "Which kind of building is mentioned?",
        "What type of building does the text name?",
        "Which building is referred to?",
        mentions=("Does the text mention a building?",),
    ),
    "weapon": _span(
        "Which weapon is mentioned?",
        "What weapon does the text name?",
        "Which kind of weapon is referred to?",
        mentions=("Does the text mention a weapon?",),
    ),
    "material": _span(
        "Which material is mentioned?",
        "What substance or material does the text name?",
        "Which material is referred to?",
        mentions=("Does the text mention a material?",),
    ),
    "currency": _span(
        "Which currency is mentioned?",
        "What currency does the text name?",
        "In which currency is it?",
        mentions=("Does the text mention a currency?",),
    ),
    "device": _span(
        "Which device is mentioned?",
        "What machine or gadget does the text name?",
        "Which piece of technology is referred to?",
        mentions=("Does the text mention a device?",),
    ),
    "celestial_body": _span(
        "Which planet or heavenly body is mentioned?",
        "What object in space does the text name?",
        "Which celestial body is referred to?",
        mentions=("Does the text mention a planet or star?",),
    ),
    "crime": _span(
        "Which crime is mentioned?",
        "What offence does the text name?",
        "Which crime is referred to?",
        mentions=("Does the text mention a crime?",),
    ),
    "religion": _span(
        "Which religion is mentioned?",
        "What faith does the text name?",
        "Which religion is referred to?",
        mentions=("Does the text mention a religion?",),
    ),
    "field_of_study": _span(
        "Which field of study is mentioned?",
        "What science or discipline does the text name?",
        "Which academic subject is referred to?",
        mentions=("Does the text mention a field of study?",),
    ),
    "web_address": _span(
        "Which website or email address is given?",
        "What web address appears in the text?",
        "Which email or web address is mentioned?",
        mentions=("Does the text give a web or email address?",),
    ),
    "sentence_type": Family(
        (
            ("Is the text a question?", {"question": "yes", "statement": "no", "exclamation": "no"}),
            ("Is this a question or a statement?", {"question": "question", "statement": "statement"}),
            ("What kind of sentence is this?", None),
            ("Does the sentence ask something?", {"question": "yes", "statement": "no", "exclamation": "no"}),
            ("Is the sentence an exclamation?", {"question": "no", "statement": "no", "exclamation": "yes"}),
        )
    ),
    "first_person": Family(
        (
            ("Is the writer speaking in the first person?", YES_NO),
            ("Does the writer talk about themselves?", YES_NO),
            ("Is the text in the first person?", YES_NO),
            ("Does the writer say I or we?", YES_NO),
            ("Is the point of view first person or not?", {"yes": "first person", "no": "not first person"}),
        )
    ),
    "quotation": Family(
        (
            ("Does the text quote someone?", YES_NO),
            ("Is anyone quoted?", YES_NO),
            ("Does the text contain a quotation?", YES_NO),
            ("Are someone's own words reported?", YES_NO),
        )
    ),
    "length": Family(
        (
            ("Is the text long or short?", None),
            ("Is this a short text?", {"short": "yes", "long": "no"}),
            ("Is the text brief or lengthy?", {"short": "brief", "long": "lengthy"}),
            ("Is this a long passage?", {"short": "no", "long": "yes"}),
        )
    ),
    "opinion_fact": Family(
        (
            ("Does the text state facts or an opinion?", None),
            ("Is the text objective or subjective?", {"fact": "objective", "opinion": "subjective"}),
            ("Is the writer giving an opinion?", {"fact": "no", "opinion": "yes"}),
            ("Is this factual writing or a personal view?", {"fact": "factual", "opinion": "personal view"}),
        )
    ),
    "intensity": Family(
        (
            ("How strong is the feeling in the text?", None),
            ("Is the tone intense or mild?", {"strong": "intense", "mild": "mild"}),
            ("Does the writer feel strongly?", {"strong": "yes", "mild": "no"}),
            ("Is the emotion strong or weak?", {"strong": "strong", "mild": "weak"}),
        )
    ),
}
assert set(FAMILIES) == set(SPAN_FAMILIES) | set(JUDGEMENT_FAMILIES)


def _ask(family: Family, value: str, rng: random.Random) -> tuple[str, str] | None:
    instruction, answers = rng.choice(family.asks)
    if answers is None:
        return instruction, value
    return (instruction, answers[value]) if value in answers else None


def share_cap(sizes: Sequence[int], share: float) -> int:
    """The largest cap M such that no group, cut to M, holds more than ``share`` of all groups cut
    to M (0 when even a cap of 1 cannot: too few groups)."""
    low, high = 0, max(sizes, default=0)
    while low < high:  # the condition holds for M up to some value, then fails for good
        middle = (low + high + 1) // 2
        kept = [min(size, middle) for size in sizes]
        if max(kept) <= share * sum(kept):
            low = middle
        else:
            high = middle - 1
    return low


def _judged(labels: Sequence[Mapping[str, str]], name: str, rng: random.Random) -> list[tuple[int, str]]:
    """(position, value) of the texts a judgement family asks, no value over ``MAX_JUDGEMENT_SHARE``."""
    by_value: dict[str, list[int]] = {}
    for position, found in enumerate(labels):
        if found.get(name):
            by_value.setdefault(found[name], []).append(position)
    cap = share_cap([len(positions) for positions in by_value.values()], MAX_JUDGEMENT_SHARE)
    kept = [
        (position, value)
        for value in sorted(by_value)
        for position in (by_value[value] if len(by_value[value]) <= cap else rng.sample(by_value[value], cap))
    ]
    return sorted(kept)


def family_questions(labels: Sequence[Mapping[str, str]], rng: random.Random) -> list[tuple[int, Question]]:
    """(text position, question) for every text's labels; span families get yes/no rows too:
    "yes" for a share (``MENTION_SHARE``) of the texts that mention one, "no" for as many texts that
    mention none (ambiguous texts are neither)."""
    asked: list[tuple[int, Question]] = []
    for name, family in FAMILIES.items():
        if name in JUDGEMENT_FAMILIES:
            for position, value in _judged(labels, name, rng):
                if (question := _ask(family, value, rng)) is not None:
                    asked.append((position, Question(*question, name, name)))
            continue
        yes = 0
        for position, found in enumerate(labels):
            value = found.get(name)
            if not value:  # absent or AMBIGUOUS
                continue
            if family.mentions and rng.random() < MENTION_SHARE:
                asked.append((position, Question(rng.choice(family.mentions), "yes", name, name)))
                yes += 1
            elif (question := _ask(family, value, rng)) is not None:
                asked.append((position, Question(*question, name, name)))
        absent = [position for position, found in enumerate(labels) if name not in found]
        for position in sorted(rng.sample(absent, min(yes, len(absent)))):
            asked.append((position, Question(rng.choice(family.mentions), "no", name, name)))
    return asked


assert AMBIGUOUS == ""  # family_questions skips ambiguous labels by their falsiness
