"""Free answers to the held-out families' questions, mapped to their label values.

Like :mod:`.answers`: each table is small and written out, an answer that maps to no value
or to two counts as wrong.  An answer may name the value ("violin"), a plain synonym
("fiddle") or, for the kind-of questions, the cuisine's signature dish ("sushi"); it may
not simply copy an incidental detail of the text ("tiramisu" is not a kind of food).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "CANONICAL",
    "FAMILY_WORDS",
    "answer_key",
    "canonical_count",
    "canonical_time_of_day",
    "canonical_yes_no",
    "collapse",
    "label_share",
]


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


FAMILY_WORDS: Mapping[str, Mapping[str, frozenset[str]]] = {
    "time_of_day": {
        "morning": _set("morning mornings sunrise dawn daybreak breakfast early-morning"),
        "afternoon": _set("afternoon afternoons midday noon lunch lunchtime teatime"),
        "evening": _set("evening evenings dusk sunset twilight supper dinner"),
        "night": _set("night nights nighttime night-time midnight overnight late-night bedtime"),
    },
    "profession": {
        "doctor": _set("doctor doctors physician gp medic medical medicine surgeon clinician"),
        "teacher": _set("teacher teachers teaching educator tutor instructor lecturer schoolteacher"),
        "chef": _set("chef chefs cook cooks cooking culinary restaurateur"),
        "farmer": _set("farmer farmers farming farm agriculture agricultural farmhand rancher grower"),
    },
    "instrument": {
        "piano": _set("piano pianos pianist keyboard keys ivories"),
        "guitar": _set("guitar guitars guitarist six-string twelve-string"),
        "violin": _set("violin violins violinist fiddle fiddler"),
        "drums": _set("drum drums drummer drumming percussion percussionist snare timpani"),
    },
    "cuisine": {
        "italian": _set("italian italy pizza pizzas pasta pizzeria trattoria"),
        "japanese": _set("japanese japan sushi ramen sashimi izakaya"),
        "mexican": _set("mexican mexico taco tacos burrito burritos tex-mex"),
        "indian": _set("indian india curry curries tandoori"),
    },
    "language": {
        "english": _set("english anglais inglés ingles englisch"),
        "french": _set("french français francais francés frances französisch franzosisch"),
        "spanish": _set("spanish español espanol castilian espagnol spanisch"),
        "german": _set("german deutsch allemand alemán aleman"),
    },
    "tense": {
        "past": _set("past preterite"),
        "present": _set("present"),
        "future": _set("future"),
    },
    "relationship": {
        "siblings": _set("sibling siblings brother brothers sister sisters twin twins"),
        "coworkers": _set(
            "coworker coworkers co-worker co-workers colleague colleagues workmate workmates work"
        ),
        "neighbours": _set("neighbour neighbours neighbor neighbors next-door"),
        "married couple": _set("married marriage spouse spouses husband wife couple wedded"),
    },
    "season": {
        "spring": _set("spring springtime march april easter"),
        "summer": _set("summer summertime june july august midsummer heatwave"),
        "autumn": _set("autumn autumnal fall september october november"),
        "winter": _set("winter wintertime december january february christmas"),
    },
}
"""Family slug -> label value -> words an answer may use for it."""

YES = _set("yes yeah yep true")
NO = _set("no not none nope false never")
ANIMALS = _set(
    "animal animals dog dogs puppy cat cats kitten horse horses pony ponies bird birds duck ducks robin"
    " seagull gull dolphin dolphins elephant elephants wasp mouse mice sheep sheepdog lion lions fish"
    " goldfish goat goats cow cows calf calves"
)
COUNTS = {
    "one": _set("one alone single solo lone solitary himself herself myself 1"),
    "two": _set("two both pair couple duo 2"),
    "three": _set("three trio 3"),
    "many": _set(
        "many several lots crowd crowds hundred hundreds dozen dozens thousand thousands numerous multiple"
        " group everyone everybody four five six seven eight nine ten eleven twelve thirteen fourteen"
        " fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety"
    ),
}
_CLOCK = re.compile(r"\b(\d{1,2})(?::\d\d)?\s*([ap])\.?m\b\.?", re.IGNORECASE)


def _words(answer: str) -> list[str]:
    return re.findall(r"[a-zà-ÿ0-9][a-zà-ÿ0-9'-]*", answer.lower())


def _only(words: set[str], table: Mapping[str, frozenset[str]]) -> str | None:
    found = [label for label, keywords in table.items() if words & keywords]
    return found[0] if len(found) == 1 else None


def _table(slug: str) -> Callable[[str], str | None]:
    def canonical(answer: str) -> str | None:
        return _only(set(_words(answer)), FAMILY_WORDS[slug])

    canonical.__doc__ = f"The {slug} value whose words the answer uses; None if none or several."
    return canonical


def canonical_yes_no(answer: str) -> str | None:
    """'yes' or 'no'; naming an animal ("a dog") counts as yes, "no animal" as no."""
    words = set(_words(answer))
    said = {"yes"} if words & YES else set()
    said |= {"no"} if words & NO else set()
    if not said and words & ANIMALS:
        said = {"yes"}
    return said.pop() if len(said) == 1 else None


def canonical_time_of_day(answer: str) -> str | None:
    """A clock time decides ("3 pm" afternoon, "1 am" night: 5-11 am morning, 12-4 pm afternoon,
    5-8 pm evening, 9 pm-4 am night); otherwise the time-of-day words of :data:`FAMILY_WORDS`."""
    clock = _CLOCK.search(answer)
    if clock is None:
        return _only(set(_words(answer)), FAMILY_WORDS["time_of_day"])
    hour = int(clock.group(1)) % 12 + (12 if clock.group(2).lower() == "p" else 0)
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 17:
        return "afternoon"
    return "evening" if 17 <= hour < 21 else "night"


def canonical_count(answer: str) -> str | None:
    """one / two / three / many; any number of four or more written in digits is many."""
    words = set(_words(answer))
    words |= {"many" for word in words if word.isdigit() and int(word) >= 4}
    return _only(words, COUNTS)


CANONICAL: Mapping[str, Callable[[str], str | None]] = {
    **{slug: _table(slug) for slug in FAMILY_WORDS},
    "time_of_day": canonical_time_of_day,
    "animal_mention": canonical_yes_no,
    "people_count": canonical_count,
}
"""Family slug -> its answer canonicaliser."""


def answer_key(answer: str, canonical: Callable[[str], str | None]) -> str:
    """What two answers must share to count as the same: the canonical value, else the
    answer lower-cased with punctuation and spacing normalised."""
    value = canonical(answer)
    return value if value is not None else " ".join(_words(answer))


def collapse(answers: Sequence[str], canonical: Callable[[str], str | None]) -> float:
    """Share of the most common answer (by :func:`answer_key`): 1.0 means one answer for all."""
    if not answers:
        return float("nan")
    return Counter(answer_key(a, canonical) for a in answers).most_common(1)[0][1] / len(answers)


def label_share(labels: Sequence[str]) -> float:
    """Share of the most common label: the collapse a perfect answerer would show."""
    return Counter(labels).most_common(1)[0][1] / len(labels) if labels else float("nan")
