"""Word lists for the span families: a text "mentions a vehicle" when a noun's lemma is one of these.

Each list holds words that name a thing of its kind in nearly every use; words whose usual
sense is something else were left out on purpose ("suit", "tie", "cap" for clothing; "hand",
"head", "heart", "face", "back" for body parts; "bank", "office", "house" for buildings).
Nothing here names a held-out family's attribute (docs/training.md): no animals, foods, drinks,
restaurants, musical instruments, professions, family relations, seasons or times of day.
"""

from __future__ import annotations

__all__ = ["WORD_LISTS", "WordList"]

from dataclasses import dataclass


@dataclass(frozen=True)
class WordList:
    """Lemmas (lower case) of one kind of thing, and the parts of speech they count as."""

    lemmas: frozenset[str]
    pos: frozenset[str] = frozenset({"NOUN"})
    in_entities: bool = False
    """Whether a word inside a named entity counts ("Mars" does; "White House" is no colour)."""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


WORD_LISTS: dict[str, WordList] = {
    "body_part": WordList(_words(
        "brain eye ear nose mouth lip tooth tongue neck shoulder elbow wrist finger thumb knee ankle"
        " toe leg skin bone stomach lung liver kidney chest hair skull spine throat hip cheek chin"
        " forehead belly eyebrow muscle")),
    "sport": WordList(_words(
        "football soccer tennis golf cricket rugby baseball basketball hockey boxing cycling swimming"
        " athletics skiing wrestling volleyball badminton snooker sailing rowing surfing skating judo"
        " karate aikido marathon gymnastics softball lacrosse polo squash handball archery fencing")),
    "disease": WordList(_words(
        "cancer diabetes flu influenza malaria hiv covid coronavirus covid-19 tuberculosis measles polio"
        " asthma pneumonia cholera ebola autism dementia arthritis obesity smallpox plague leukaemia"
        " leukemia hepatitis epilepsy schizophrenia anorexia allergy fever typhoid syphilis"),
        pos=frozenset({"NOUN", "PROPN"}), in_entities=True),
    "vehicle": WordList(_words(
        "car bus train truck lorry bicycle bike motorcycle plane aeroplane airplane aircraft helicopter"
        " ship boat ferry taxi tram van rocket submarine tractor jet yacht scooter ambulance canoe"
        " spacecraft limousine locomotive")),
    "colour": WordList(_words(
        "red blue green yellow orange purple pink brown grey gray violet turquoise scarlet crimson"),
        pos=frozenset({"ADJ", "NOUN"})),
    "clothing": WordList(_words(
        "shirt jacket coat hat shoe boot sock trousers jeans skirt scarf glove sweater jumper hoodie"
        " helmet mask t-shirt gown robe dress uniform blouse sandal pyjamas bikini")),
    "building": WordList(_words(
        "church school hospital museum library castle palace cathedral mosque temple prison jail"
        " stadium factory airport hotel theatre theater cinema tower skyscraper mall supermarket"
        " warehouse courthouse embassy university college chapel monastery barn lighthouse")),
    "weapon": WordList(_words(
        "gun rifle pistol sword bomb missile knife grenade cannon spear shotgun handgun torpedo dagger"
        " axe musket bayonet revolver firearm warhead")),
    "material": WordList(_words(
        "wood steel iron gold silver copper glass plastic stone cotton wool leather silk clay marble"
        " brick aluminium aluminum coal rubber granite diamond uranium bronze timber cement")),
    "currency": WordList(_words("dollar euro yen rupee peso franc ruble rouble yuan bitcoin shilling lira")),
    "device": WordList(_words(
        "phone smartphone telephone computer laptop television tv radio camera printer robot"
        " calculator modem iphone ipad satellite telescope microscope")),
    "celestial_body": WordList(_words(
        "sun moon mars venus jupiter saturn neptune uranus pluto comet asteroid galaxy meteor nebula"),
        pos=frozenset({"NOUN", "PROPN"}), in_entities=True),
    "crime": WordList(_words(
        "murder theft fraud robbery burglary assault kidnapping smuggling bribery corruption terrorism"
        " arson embezzlement manslaughter homicide trafficking treason blackmail extortion forgery"
        " vandalism perjury")),
    "religion": WordList(_words(
        "christianity islam judaism buddhism hinduism sikhism atheism catholicism protestantism"
        " taoism shinto"), pos=frozenset({"NOUN", "PROPN"}), in_entities=True),
    "field_of_study": WordList(_words(
        "physics chemistry biology mathematics economics philosophy psychology astronomy geology"
        " linguistics sociology anthropology engineering botany genetics")),
}  # fmt: skip
