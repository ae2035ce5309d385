"""Attribute-controlled synthetic texts: every label is known by construction.

No offline corpus labels what a writer *wants* or *feels*, so these texts are
composed from a grid of attributes (intent, emotion, cause, product, place,
time, audience, register), each rendered in several phrasings and shuffled, so
that one attribute cannot be read off the position or wording of another.  They
train the questions real text cannot answer; they are never used for evaluation.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "AUDIENCES",
    "CAUSES",
    "CAUSE_FITS",
    "EMOTIONS",
    "EMOTION_FITS",
    "EMOTION_WORDS",
    "INTENTS",
    "LIFE_EVENTS",
    "MESSAGE_SENTIMENT",
    "NAMES",
    "NEGATIVE_EMOTIONS",
    "PLACES",
    "POSITIVE_EMOTIONS",
    "PRODUCTS",
    "REGISTERS",
    "TIMES",
    "SyntheticText",
    "compose_message",
    "compose_messages",
    "compose_post",
    "compose_posts",
    "distinct_texts",
]


#: intent -> (canonical answer, request phrasings; ``{product}`` is filled in)
INTENTS: dict[str, tuple[str, ...]] = {
    "refund": (
        "I want my money back for the {product}.",
        "Please refund me for the {product}.",
        "Can I get a full refund on the {product}?",
        "I'd like a refund, the {product} is going straight back.",
        "Just give me my money back for this {product}.",
        "How do I get reimbursed for the {product}?",
    ),
    "cancellation": (
        "Please cancel my {product} order.",
        "I want to cancel the {product} before it ships.",
        "How do I cancel my {product}?",
        "Cancel my order for the {product}, I no longer need it.",
        "I'd like to end my {product} contract today.",
    ),
    "order status": (
        "Where is my {product}?",
        "Can you tell me when my {product} will arrive?",
        "I'm still waiting for the {product}, where is it?",
        "Could you track my {product} order for me?",
        "Has my {product} been shipped yet?",
    ),
    "replacement": (
        "Please send me a new {product}.",
        "I need a replacement {product} as soon as possible.",
        "Can you swap this {product} for one that works?",
        "I'd like the {product} exchanged for a new one.",
    ),
    "technical help": (
        "How do I get the {product} to work?",
        "Can someone help me set up the {product}?",
        "The {product} won't turn on, what should I do?",
        "I need help fixing my {product}.",
        "Is there a way to reset the {product}?",
    ),
    "address change": (
        "Please send the {product} to my new address.",
        "I need to change the delivery address for my {product}.",
        "Can you update my shipping address before the {product} goes out?",
        "I've moved, so the {product} has to go to a different address.",
    ),
    "billing question": (
        "Why was I charged twice for the {product}?",
        "Can you explain this charge for the {product} on my bill?",
        "I don't understand the invoice for my {product}.",
        "There is a payment for the {product} I don't recognise.",
    ),
    "information": (
        "Does the {product} come in other colours?",
        "Could you tell me more about the {product}?",
        "What is the warranty on the {product}?",
        "Is the {product} available in larger sizes?",
        "How long does the battery in the {product} last?",
    ),
    "appointment": (
        "I'd like to book a time to have the {product} looked at.",
        "Can I schedule a visit to get the {product} repaired?",
        "When is the next free slot to bring in my {product}?",
        "Please book me an appointment about the {product}.",
    ),
    "praise": (
        "I just wanted to say the {product} is brilliant.",
        "Thank you, the {product} works perfectly.",
        "Your team did a fantastic job with my {product}.",
        "I love the {product}, keep it up!",
    ),
}

#: emotion -> expressions of it (no intent words)
EMOTIONS: dict[str, tuple[str, ...]] = {
    "angry": (
        "This is absolutely unacceptable!",
        "I am furious.",
        "I'm so angry I can barely type.",
        "Frankly, this is outrageous.",
        "I am fed up and livid with your company.",
    ),
    "frustrated": (
        "I've tried everything and nothing works.",
        "This is the third time I've had to ask.",
        "I'm getting really frustrated with this.",
        "Why is this so hard?",
    ),
    "happy": (
        "I'm really pleased!",
        "What a lovely surprise.",
        "This made my day!",
        "I'm so happy right now.",
        "Everything about this is wonderful.",
    ),
    "grateful": (
        "Thank you so much for your help.",
        "I really appreciate everything you've done.",
        "Many thanks, you've been very kind.",
        "I'm grateful for how quickly you responded.",
    ),
    "worried": (
        "I'm worried something has gone wrong.",
        "I'm a bit anxious about this.",
        "I'm scared I've lost my money.",
        "This is making me nervous.",
    ),
    "sad": (
        "I'm really disappointed and upset.",
        "Honestly, this has left me feeling down.",
        "It's heartbreaking, it was a gift for my mum.",
        "I feel let down.",
    ),
    "confused": (
        "I'm not sure what's going on.",
        "I'm confused by the instructions.",
        "None of this makes sense to me.",
        "I don't understand what I'm supposed to do.",
    ),
    "excited": (
        "I can't wait!",
        "I'm so excited about this!",
        "This is going to be amazing!",
        "I've been looking forward to this all week!",
    ),
    "calm": (
        "No rush at all.",
        "Whenever you have a moment is fine.",
        "Just letting you know.",
        "It's not urgent.",
    ),
}

#: cause -> what happened (``{product}`` filled in)
CAUSES: dict[str, tuple[str, ...]] = {
    "late delivery": (
        "The {product} was supposed to arrive two weeks ago.",
        "My {product} still hasn't turned up after ten days.",
        "Delivery of the {product} is a week late.",
    ),
    "damaged item": (
        "The {product} arrived cracked.",
        "The box was crushed and the {product} inside is broken.",
        "The {product} came damaged.",
    ),
    "wrong item": (
        "You sent me the wrong {product}.",
        "I ordered a blue {product} and got a red one.",
        "This isn't the {product} I ordered.",
    ),
    "overcharge": (
        "I was charged double for the {product}.",
        "The price of the {product} on my bill is higher than advertised.",
        "You took the payment for the {product} twice.",
    ),
    "faulty product": (
        "The {product} stopped working after two days.",
        "The {product} keeps switching itself off.",
        "The {product} makes a loud buzzing noise.",
    ),
    "good service": (
        "The {product} arrived early and well packed.",
        "Your engineer fixed my {product} in minutes.",
        "The {product} is exactly as described.",
    ),
    "gift": (
        "The {product} is a birthday present for my sister.",
        "I bought the {product} as a gift for my dad.",
    ),
    "moving house": (
        "I'm moving house next week.",
        "We've just moved to a new flat.",
    ),
}

#: which causes fit which intents (a refund for good service would be a contradiction)
CAUSE_FITS: dict[str, tuple[str, ...]] = {
    "refund": ("late delivery", "damaged item", "wrong item", "overcharge", "faulty product"),
    "cancellation": ("late delivery", "overcharge", "moving house"),
    "order status": ("late delivery", "gift"),
    "replacement": ("damaged item", "wrong item", "faulty product"),
    "technical help": ("faulty product", "gift"),
    "address change": ("moving house", "gift"),
    "billing question": ("overcharge",),
    "information": ("gift", "good service"),
    "appointment": ("faulty product", "damaged item"),
    "praise": ("good service",),
}
EMOTION_FITS: dict[str, tuple[str, ...]] = {
    "praise": ("happy", "grateful", "excited"),
    "information": ("calm", "excited", "confused", "happy"),
}
NEGATIVE_EMOTIONS = ("angry", "frustrated", "worried", "sad", "confused", "calm")
#: a message's sentiment from its feeling (a confused message is neither clearly one nor the other)
MESSAGE_SENTIMENT = {
    "happy": "positive", "grateful": "positive", "excited": "positive", "calm": "neutral",
    "angry": "negative", "frustrated": "negative", "worried": "negative", "sad": "negative",
}  # fmt: skip

PRODUCTS: dict[str, tuple[str, ...]] = {
    "electronics": ("phone", "laptop", "headphones", "television", "tablet", "camera", "printer"),
    "home": ("sofa", "washing machine", "kettle", "fridge", "mattress", "lamp"),
    "clothing": ("jacket", "pair of shoes", "dress", "coat", "pair of jeans"),
    "travel": ("flight", "hotel booking", "train ticket", "holiday package"),
    "services": ("broadband", "phone contract", "gym membership", "insurance policy", "subscription"),
}
TIMES = {
    "yesterday": "yesterday",
    "last week": "last week",
    "this morning": "this morning",
    "last month": "last month",
    "on Monday": "Monday",
}
#: register -> (greeting options, sign-off options, formal?)
REGISTERS: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]] = {
    "email": (("Dear Sir or Madam,", "Hello,", "Dear customer service team,"), ("Kind regards,", "Yours faithfully,", "Best wishes,"), True),
    "chat message": (("hi", "hey there", "hello?"), ("", "thx", "cheers"), False),
    "social media post": (("Hey @support", "So,", "Really,"), ("#customerservice", "", "#fail"), False),
    "letter": (("To whom it may concern,", "Dear Manager,"), ("Yours sincerely,", "Respectfully,"), True),
}  # fmt: skip
AUDIENCES = {
    "email": "customer service",
    "chat message": "support agent",
    "social media post": "the public",
    "letter": "the manager",
}
#: places for synthetic texts (a fixed list: evaluation place labels come from a gazetteer instead).
PLACES = [
    ("Nairobi", "Kenya"), ("Lagos", "Nigeria"), ("Accra", "Ghana"), ("Cairo", "Egypt"),
    ("Johannesburg", "South Africa"), ("Mumbai", "India"), ("Delhi", "India"), ("Karachi", "Pakistan"),
    ("Dhaka", "Bangladesh"), ("Tokyo", "Japan"), ("Osaka", "Japan"), ("Seoul", "South Korea"),
    ("Shanghai", "China"), ("Beijing", "China"), ("Manila", "Philippines"), ("Jakarta", "Indonesia"),
    ("Bangkok", "Thailand"), ("Hanoi", "Vietnam"), ("Sydney", "Australia"), ("Melbourne", "Australia"),
    ("Auckland", "New Zealand"), ("Toronto", "Canada"), ("Vancouver", "Canada"), ("Chicago", "United States"),
    ("Houston", "United States"), ("Boston", "United States"), ("Mexico City", "Mexico"),
    ("Bogota", "Colombia"), ("Lima", "Peru"), ("Santiago", "Chile"), ("Buenos Aires", "Argentina"),
    ("Sao Paulo", "Brazil"), ("Madrid", "Spain"), ("Barcelona", "Spain"), ("Lisbon", "Portugal"),
    ("Lyon", "France"), ("Marseille", "France"), ("Munich", "Germany"), ("Hamburg", "Germany"),
    ("Milan", "Italy"), ("Naples", "Italy"), ("Vienna", "Austria"), ("Zurich", "Switzerland"),
    ("Amsterdam", "Netherlands"), ("Brussels", "Belgium"), ("Stockholm", "Sweden"), ("Oslo", "Norway"),
    ("Helsinki", "Finland"), ("Warsaw", "Poland"), ("Prague", "Czech Republic"), ("Budapest", "Hungary"),
    ("Athens", "Greece"), ("Istanbul", "Turkey"), ("Dubai", "United Arab Emirates"), ("Riyadh", "Saudi Arabia"),
    ("Manchester", "United Kingdom"), ("Glasgow", "United Kingdom"), ("Dublin", "Ireland"),
]  # fmt: skip
NAMES = (
    "Maria",
    "James",
    "Aisha",
    "Tom",
    "Chen",
    "Priya",
    "Lukas",
    "Fatima",
    "Diego",
    "Grace",
    "Kwame",
    "Yuki",
)


@dataclass(frozen=True)
class SyntheticText:
    """A composed text and the attributes it was composed from."""

    text: str
    labels: dict[str, str]


def _emotion_for(intent: str, rng: random.Random) -> str:
    return rng.choice(EMOTION_FITS.get(intent, NEGATIVE_EMOTIONS))


def compose_message(rng: random.Random, places: list[tuple[str, str]]) -> SyntheticText:
    """One customer message: greeting, cause, request, feeling, place/time detail, sign-off, shuffled."""
    intent = rng.choice(sorted(INTENTS))
    cause = rng.choice(CAUSE_FITS[intent])
    emotion = _emotion_for(intent, rng)
    domain = rng.choice(sorted(PRODUCTS))
    product = rng.choice(PRODUCTS[domain])
    register = rng.choice(sorted(REGISTERS))
    time_phrase, time_answer = rng.choice(sorted(TIMES.items()))
    city, country = rng.choice(places)
    greeting, sign_off, formal = REGISTERS[register]
    body = [
        rng.choice(CAUSES[cause]).format(product=product),
        rng.choice(INTENTS[intent]).format(product=product),
        rng.choice(EMOTIONS[emotion]),
        rng.choice(
            (
                f"I live in {city}, {country}.",
                f"I'm writing from {city}.",
                f"Our branch in {city} couldn't help.",
                f"I ordered it {time_phrase} from {city}.",
            )
        ),
    ]
    rng.shuffle(body)
    if rng.random() < 0.5:
        body.insert(rng.randrange(len(body) + 1), f"I contacted you {time_phrase}.")
    text = " ".join(part for part in (rng.choice(greeting), *body, rng.choice(sign_off)) if part)
    if register in {"email", "letter"}:
        text += f" {rng.choice(NAMES)}"
    labels = {
        "intent": intent,
        "emotion": emotion,
        "cause": cause,
        "product": product,
        "domain": domain,
        "city": city,
        "country": country,
        "time": time_answer,
        "register": register,
        "formality": "formal" if formal else "informal",
        "audience": AUDIENCES[register],
        "satisfied": "yes" if intent == "praise" or cause == "good service" else "no",
    }
    if emotion in MESSAGE_SENTIMENT:
        labels["sentiment"] = MESSAGE_SENTIMENT[emotion]
    return SyntheticText(text, labels)


def distinct_texts(
    composer: Callable[[random.Random, list[tuple[str, str]]], SyntheticText],
    count: int,
    seed: int,
    places: list[tuple[str, str]],
) -> list[SyntheticText]:
    """``count`` distinct texts from ``composer``, deterministic for a seed."""
    rng = random.Random(seed)
    seen: set[str] = set()
    texts: list[SyntheticText] = []
    for _ in range(count * 20):
        if len(texts) == count:
            break
        composed = composer(rng, places)
        if composed.text not in seen:
            seen.add(composed.text)
            texts.append(composed)
    return texts


def compose_messages(count: int, seed: int, places: list[tuple[str, str]]) -> list[SyntheticText]:
    """``count`` distinct customer messages."""
    return distinct_texts(compose_message, count, seed, places)


#: life event -> (emotion, sentences telling it)
LIFE_EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "new job": ("excited", ("I start my new job on Monday!", "I got the job I interviewed for!")),
    "promotion": ("proud", ("My boss told me I'm being promoted.", "After three years I finally got the promotion.")),
    "exam results": ("relieved", ("I passed all my exams.", "The results came out and I passed.")),
    "pet died": ("sad", ("Our old dog passed away last night.", "We had to say goodbye to our cat today.")),
    "break-up": ("heartbroken", ("My partner and I split up.", "She ended our relationship yesterday.")),
    "job loss": ("anxious", ("I was made redundant this morning.", "The factory closed and I lost my job.")),
    "wedding": ("happy", ("We got married on Saturday!", "My sister's wedding was perfect.")),
    "new baby": ("overjoyed", ("Our daughter was born this morning!", "We just welcomed a baby boy.")),
    "noisy neighbours": ("annoyed", ("The neighbours played loud music until 3am again.", "Next door's party kept us up all night.")),
    "cancelled trip": ("disappointed", ("Our holiday got cancelled at the last minute.", "The trip we saved for all year is off.")),
    "illness": ("worried", ("My dad is in hospital again.", "The doctor wants more tests on my mum.")),
    "won prize": ("thrilled", ("I won first prize in the baking contest!", "My painting won the local art prize!")),
}  # fmt: skip
EMOTION_WORDS = {
    "excited": ("I can't stop smiling.", "So pumped!"),
    "proud": ("All that hard work paid off.", "I feel really proud."),
    "relieved": ("What a weight off my shoulders.", "Phew."),
    "sad": ("The house feels so empty.", "I can't stop crying."),
    "heartbroken": ("I don't know how to get over this.", "My heart is in pieces."),
    "anxious": ("I don't know how we'll pay the rent.", "I can't sleep for worrying."),
    "happy": ("Best day ever.", "Everyone was smiling."),
    "overjoyed": ("We are over the moon.", "Pure joy."),
    "annoyed": ("I've had enough of it.", "So irritating."),
    "disappointed": ("Really gutted.", "Such a letdown."),
    "worried": ("Fingers crossed it's nothing.", "I'm so worried."),
    "thrilled": ("Still can't believe it!", "Absolutely thrilled."),
}
POSITIVE_EMOTIONS = {"excited", "proud", "relieved", "happy", "overjoyed", "thrilled"}


def compose_post(rng: random.Random, places: list[tuple[str, str]]) -> SyntheticText:
    """A personal post about a life event: the feeling, its cause, place and time are known."""
    event = rng.choice(sorted(LIFE_EVENTS))
    emotion, tellings = LIFE_EVENTS[event]
    city, country = rng.choice(places)
    time_phrase, time_answer = rng.choice(sorted(TIMES.items()))
    parts = [
        rng.choice(tellings),
        rng.choice(EMOTION_WORDS[emotion]),
        rng.choice(
            (f"Here in {city} it's been a long week.", f"Back home in {city} now.", f"Greetings from {city}.")
        ),
    ]
    rng.shuffle(parts)
    if rng.random() < 0.4:
        parts.append(f"Found out {time_phrase}.")
    register = rng.choice(("social media post", "diary entry", "text message"))
    labels = {
        "event": event,
        "emotion": emotion,
        "sentiment": "positive" if emotion in POSITIVE_EMOTIONS else "negative",
        "city": city,
        "country": country,
        "register": register,
        "formality": "informal",
        "audience": "friends" if register != "diary entry" else "the writer",
    }
    if "Found out" in parts[-1]:
        labels["time"] = time_answer
    return SyntheticText(" ".join(parts), labels)


def compose_posts(count: int, seed: int, places: list[tuple[str, str]]) -> list[SyntheticText]:
    """``count`` distinct personal posts."""
    return distinct_texts(compose_post, count, seed, places)
