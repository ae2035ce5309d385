"""Composed news briefs: topic category x event x good/bad/neutral x place, each label known by construction.

Why: no shipped corpus labels news with a topic *category* (sport, business...) or
with whether the news is good or bad for the people in it, and the topic answers
the model learned from page titles were specific subjects.  A brief is a lead
sentence (the event, in the category's words, with its valence), a detail
sentence of the category, a reaction that carries the valence, and sometimes a
time; every part has several phrasings and the parts' order varies.
"""

from __future__ import annotations

import random

from .synthetic import NAMES, TIMES, SyntheticText, distinct_texts

__all__ = ["CATEGORIES", "REACTIONS", "compose_brief", "compose_briefs"]

#: category -> valence -> lead sentences ({city}, {country}, {name}, {number} are filled in)
CATEGORIES: dict[str, dict[str, tuple[str, ...]]] = {
    "sport": {
        "positive": (
            "{city} United won the cup final 3-1, their first trophy in {number} years.",
            "Sprinter {name} broke the national record at the championships in {city}.",
            "The {country} rugby team beat the world champions in a thrilling match.",
            "Striker {name} returned from injury and scored twice as {city} City won the league.",
        ),
        "negative": (
            "{city} Rovers were relegated after a 4-0 defeat on the final day of the season.",
            "Tennis player {name} lost in the first round and faces months out with a knee injury.",
            "The {country} football team lost the semi-final on penalties.",
            "The marathon in {city} was cancelled hours before the start, and runners were sent home.",
        ),
        "neutral": (
            "The draw for the {country} cup was made in {city} on Monday.",
            "{city} FC named {name} as their new head coach on a two-year contract.",
        ),
    },
    "politics": {
        "positive": (
            "Parliament in {country} passed a law guaranteeing free school meals for every child.",
            "The government of {country} and opposition parties agreed a peace deal after years of talks.",
            "Voters in {city} elected {name} as mayor in a record turnout.",
            "Ministers in {country} announced a rise in pensions for {number} thousand retirees.",
        ),
        "negative": (
            "The coalition government of {country} collapsed after the finance minister resigned.",
            "Opposition leader {name} was arrested in {city} ahead of the election.",
            "Parliament in {country} voted to cut housing benefit, leaving thousands facing eviction.",
            "Protesters clashed with police outside the parliament in {city} over the disputed vote.",
        ),
        "neutral": (
            "Voters in {country} go to the polls on Sunday to elect a new parliament.",
            "The prime minister of {country} will meet party leaders in {city} next week.",
        ),
    },
    "business": {
        "positive": (
            "Shares in {city}-based carmaker Motiva rose {number}% after record profits.",
            "The car factory in {city} will hire {number} hundred workers after winning a large order.",
            "The economy of {country} grew faster than expected and unemployment fell to a ten-year low.",
            "Retailer {name} & Sons reported its best Christmas sales for a decade.",
        ),
        "negative": (
            "The steel plant in {city} will close with the loss of {number} hundred jobs.",
            "Shares in the bank fell sharply after it reported heavy losses in {country}.",
            "Inflation in {country} hit its highest level in {number} years, squeezing household budgets.",
            "The airline based in {city} went bankrupt, leaving thousands of staff unpaid.",
        ),
        "neutral": (
            "The central bank of {country} kept interest rates unchanged on Thursday.",
            "The two {city} supermarket chains confirmed they are in merger talks.",
        ),
    },
    "technology": {
        "positive": (
            "A start-up in {city} launched a phone battery that charges fully in five minutes.",
            "Fast broadband will reach every village in {country} by next year, the operator said.",
            "Engineers in {city} released free software that translates sign language in real time.",
            "A new app built by students in {country} helps blind users read menus aloud.",
        ),
        "negative": (
            "Hackers stole the personal data of {number} million customers of a {country} mobile operator.",
            "A software fault knocked out online banking across {country} for two days.",
            "The games console maker recalled its new device after batteries overheated.",
            "A computer virus spread through hospital networks in {city}, shutting down appointments.",
        ),
        "neutral": (
            "The tech firm will unveil its new smartphone at an event in {city} next month.",
            "Regulators in {country} opened a consultation on the rules for artificial intelligence.",
        ),
    },
    "science": {
        "positive": (
            "Astronomers in {country} discovered a planet that may hold liquid water.",
            "Researchers in {city} found a way to turn plastic waste into fuel.",
            "The space agency of {country} landed its first probe on the Moon.",
            "Scientists led by {name} revived a coral reef thought to be lost.",
        ),
        "negative": (
            "A rocket carrying a research satellite exploded shortly after launch in {country}.",
            "Scientists in {city} warned that a third of the country's bee species face extinction.",
            "The research laboratory in {city} lost its funding and will close.",
            "A failed experiment destroyed years of climate data, researchers in {country} admitted.",
        ),
        "neutral": (
            "Physicists from {number} countries met in {city} to plan the next particle collider.",
            "A research ship left {city} for a six-month survey of the deep ocean.",
        ),
    },
    "health": {
        "positive": (
            "A new vaccine cut malaria cases in {country} by half, doctors said.",
            "The hospital in {city} opened a cancer unit that will treat {number} hundred patients a year.",
            "Waiting times for surgery in {country} fell to their lowest level in a decade.",
            "Doctors in {city} reported the first patient cured by the new gene therapy.",
        ),
        "negative": (
            "An outbreak of measles in {city} has put {number} children in hospital.",
            "Nurses in {country} warned that hospitals are running out of beds.",
            "The health service in {country} said deaths from heart disease rose for the third year.",
            "A shortage of insulin left patients in {city} without their medicine.",
        ),
        "neutral": (
            "The health ministry of {country} will publish new guidance on diet next month.",
            "Doctors in {city} began a two-year study of sleep and memory.",
        ),
    },
    "entertainment": {
        "positive": (
            "The film by director {name} won the top prize at the festival in {city}.",
            "Singer {name}'s new album went straight to number one in {country}.",
            "The musical opened in {city} to standing ovations and sold-out shows.",
            "The television drama set in {country} won best series at the awards.",
        ),
        "negative": (
            "The band cancelled their tour of {country} after their singer fell ill.",
            "The film studio in {city} shut down, halting production of three movies.",
            "Critics panned the blockbuster and it flopped at the box office in {country}.",
            "The actor {name} pulled out of the play in {city} days before the premiere.",
        ),
        "neutral": (
            "The film festival in {city} announced this year's programme on Tuesday.",
            "The pop star {name} will appear on a television talent show in {country}.",
        ),
    },
    "crime": {
        "positive": (
            "Police in {city} broke up a drug gang and recovered stolen cars worth millions.",
            "Burglaries in {city} fell by a third after neighbourhood patrols began.",
            "A missing girl was found safe and well in {city} after a police search.",
            "Detectives in {country} caught the fraudsters who had cheated pensioners.",
        ),
        "negative": (
            "Two people were stabbed in a robbery at a shop in {city}.",
            "Thieves stole paintings worth {number} million from a museum in {country}.",
            "A gang attacked a bus in {city}, injuring several passengers.",
            "Police in {country} said knife crime rose for the fifth year in a row.",
        ),
        "neutral": (
            "The trial of a man accused of fraud opened in {city} on Monday.",
            "Police in {country} released their annual figures on recorded crime.",
        ),
    },
    "education": {
        "positive": (
            "Exam results in {country} were the best on record, with more pupils passing maths.",
            "A new university campus opened in {city}, with places for {number} thousand students.",
            "Teachers in {country} won a pay rise after long talks.",
            "The school in {city} led by {name} was rated outstanding by inspectors.",
        ),
        "negative": (
            "Schools in {city} closed after teachers went on strike over pay.",
            "University fees in {country} will double, leaving students with larger debts.",
            "Inspectors found the school in {city} failing and ordered it to close.",
            "A fire destroyed the primary school in {city} days before the new term.",
        ),
        "neutral": (
            "The school year in {country} will start a week later than usual.",
            "Universities in {city} will publish their admission rules in June.",
        ),
    },
    "travel": {
        "positive": (
            "A new high-speed rail line cut the journey from {city} to the capital to an hour.",
            "Tourist numbers in {country} reached a record, boosting hotels and restaurants.",
            "The airport in {city} opened a new terminal, ending years of queues.",
            "Visas for visitors to {country} were scrapped, making trips cheaper and easier.",
        ),
        "negative": (
            "Hundreds of flights from {city} were cancelled, stranding thousands of holidaymakers.",
            "A ferry carrying tourists ran aground off the coast of {country}.",
            "Rail workers in {country} went on strike, halting trains over the holiday weekend.",
            "Flooding closed the main road to {city}, cutting off resorts for days.",
        ),
        "neutral": (
            "The airline will move its flights from {city} to a new terminal in May.",
            "Tourism officials in {country} published the summer timetable for ferries.",
        ),
    },
    "food": {
        "positive": (
            "A restaurant in {city} run by chef {name} won its first Michelin star.",
            "A record harvest in {country} brought down the price of bread.",
            "The food bank in {city} received enough donations to feed {number} hundred families.",
            "Farmers in {country} were paid more for their milk under a new deal.",
        ),
        "negative": (
            "Food poisoning at a wedding in {city} sent {number} guests to hospital.",
            "Drought ruined the wheat harvest in {country}, and food prices soared.",
            "A popular bakery chain in {city} closed all its shops.",
            "Contaminated baby milk was recalled from shops across {country}.",
        ),
        "neutral": (
            "The food festival in {city} returns in September with {number} stalls.",
            "Supermarkets in {country} will change how they label sugar in drinks.",
        ),
    },
    "environment": {
        "positive": (
            "The river in {city} is clean enough to swim in for the first time in {number} years.",
            "{country} opened its largest wind farm, which will power a million homes.",
            "Wolves returned to the forests of {country} after a century away.",
            "Air pollution in {city} fell sharply after the ban on old diesel cars.",
        ),
        "negative": (
            "Wildfires near {city} destroyed homes and forced thousands to flee.",
            "Floods in {country} left {number} thousand people without homes.",
            "An oil spill polluted beaches along the coast of {country}.",
            "A heatwave in {city} killed dozens of elderly people.",
        ),
        "neutral": (
            "Forecasters in {country} expect a mild winter this year.",
            "The city council of {city} will decide on a plan for new parks next month.",
        ),
    },
}  # fmt: skip

#: valence -> a sentence that carries it, about the people involved
REACTIONS: dict[str, tuple[str, ...]] = {
    "positive": (
        "Residents welcomed the news.",
        '"This is a great day for all of us," said {name}.',
        "Families said they were delighted.",
        "Supporters celebrated late into the night.",
        "Local people called it a huge relief.",
    ),
    "negative": (
        "Residents said they were devastated.",
        '"This is a terrible blow for everyone here," said {name}.',
        "Families are angry and want answers.",
        "Many people fear for the future.",
        "Local leaders called it a disaster.",
    ),
    "neutral": (
        "Further details are expected later.",
        "{name}, a spokesperson, said more information would follow.",
        "The decision had been expected.",
        "Officials did not comment further.",
        "No changes are planned until then.",
    ),
}
#: category -> a detail sentence in the category's words, with no valence
DETAILS: dict[str, tuple[str, ...]] = {
    "sport": ("The match was played in front of {number} thousand fans.", "The season ends in May."),
    "politics": ("The vote followed weeks of debate.", "The party holds {number} seats in parliament."),
    "business": ("The company employs {number} thousand people.", "Markets closed before the announcement."),
    "technology": ("The firm has {number} million users.", "The software runs on phones and laptops."),
    "science": ("The findings were published in a journal.", "The project involved {number} researchers."),
    "health": ("The hospital serves {number} thousand patients.", "Doctors advised people to see their GP."),
    "entertainment": ("Tickets went on sale last week.", "The show was watched by {number} million viewers."),
    "crime": ("Police have asked witnesses to come forward.", "The case will go to court next year."),
    "education": ("The school has {number} hundred pupils.", "Parents were told by letter."),
    "travel": ("The route carries {number} thousand people a day.", "Check before travelling."),
    "food": ("The market sells produce from local farms.", "Prices are checked every month."),
    "environment": ("The area is home to rare birds.", "It has been studied for {number} years."),
}  # fmt: skip
VALENCES = ("positive", "negative", "neutral")


def compose_brief(rng: random.Random, places: list[tuple[str, str]]) -> SyntheticText:
    """One news brief: lead, detail, reaction (and sometimes a time), labelled by construction."""
    category = rng.choice(sorted(CATEGORIES))
    valence = rng.choice(VALENCES)
    city, country = rng.choice(places)
    time_phrase, time_answer = rng.choice(sorted(TIMES.items()))

    def fill(sentence: str) -> str:
        name = rng.choice(NAMES) + " " + rng.choice(("Okoro", "Silva", "Novak", "Tanaka", "Evans", "Haddad"))
        return sentence.format(city=city, country=country, name=name, number=rng.randint(2, 40))

    lead = fill(rng.choice(CATEGORIES[category][valence]))
    rest = [fill(rng.choice(DETAILS[category])), fill(rng.choice(REACTIONS[valence]))]
    rng.shuffle(rest)
    parts = [lead, *rest]
    if rng.random() < 0.3:
        parts.insert(1, f"It happened {time_phrase}.")
    text = " ".join(parts)
    labels = {"topic": category, "news_valence": valence, "register": "news brief", "formality": "formal"}
    # a place or time is an answer only where the brief names it
    named = (("city", city), ("country", country), ("time", time_phrase))
    labels.update({key: value for key, value in named if value in text})
    if "time" in labels:
        labels["time"] = time_answer
    return SyntheticText(text, labels)


def compose_briefs(count: int, seed: int, places: list[tuple[str, str]]) -> list[SyntheticText]:
    """``count`` distinct news briefs."""
    return distinct_texts(compose_brief, count, seed, places)
