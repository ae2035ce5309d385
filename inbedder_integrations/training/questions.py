"""Question families: each label a text carries becomes questions in several phrasings.

A phrasing is a question and, optionally, a map from the canonical label to the
answer that fits the wording ("Is this good or bad news?" -> good / bad).  Many
phrasings per label teach the model the *kind* of question rather than one
string; a family groups labels so the builder can balance what is asked.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "MENTIONS",
    "POLARITY_WORDS",
    "QUESTIONS",
    "YES_NO",
    "Phrasing",
    "Question",
    "about_question",
    "questions_for",
]


Phrasing = tuple[str, Mapping[str, str] | None]

POLARITY_WORDS = {
    "good-bad": {"positive": "good", "negative": "bad", "neutral": "neither"},
    "yes-no": {"positive": "yes", "negative": "no"},
}

#: label name -> (family, phrasings)
QUESTIONS: dict[str, tuple[str, tuple[Phrasing, ...]]] = {
    "topic": ("topic", (
        ("What is the topic of this text?", None), ("What is this text about?", None),
        ("What is the main subject of the text?", None), ("Which subject does the text cover?", None),
        ("What is the theme of the passage?", None), ("Which category does this text belong to?", None),
        ("What category fits this text?", None), ("What area is the text about?", None),
        ("Which topic does the article cover?", None),
    )),
    # specific subjects (a page title, a section, a subject line, a product): asked for as such,
    # so that a topic question is answered with a category
    "title": ("subject", (
        ("Which person or thing is the text about?", None), ("What specific subject is the text about?", None),
        ("Which encyclopedia article is this passage from?", None), ("What is the title of the article?", None),
    )),
    "section": ("subject", (("Which section of an encyclopedia article is this passage from?", None),)),
    "subject": ("subject", (("What is the subject line of this post?", None),)),
    "product": ("subject", (
        ("Which product is the message about?", None), ("What item is mentioned?", None),
        ("What did the customer buy?", None),
    )),
    "domain": ("subject", (("What kind of product is it?", None), ("Which product category is this about?", None))),
    "sentiment": ("sentiment", (
        ("What is the sentiment of the text?", None),
        ("Is the text positive or negative?", {"positive": "positive", "negative": "negative", "neutral": "neither"}),
        ("Is this good or bad news?", POLARITY_WORDS["good-bad"]),
        ("What is the writer's attitude?", {"positive": "approving", "negative": "critical", "neutral": "neutral"}),
        ("Is the tone positive, negative or neutral?", None),
    )),
    "news_valence": ("sentiment", (
        ("Is this good or bad news?", POLARITY_WORDS["good-bad"]),
        ("Is the news good or bad for those affected?", POLARITY_WORDS["good-bad"]),
        ("Is it good news or bad news?", POLARITY_WORDS["good-bad"]),
        ("Is the outcome good or bad for the people in the story?", POLARITY_WORDS["good-bad"]),
        ("Is the news positive or negative?", {"positive": "positive", "negative": "negative", "neutral": "neither"}),
        ("Would the people involved welcome this news?", {"positive": "yes", "negative": "no", "neutral": "neither"}),
    )),
    "review_sentiment": ("sentiment", (
        ("Is the review positive or negative?", None),
        ("Did the critic like the film?", POLARITY_WORDS["yes-no"]),
        ("What is the reviewer's verdict?", {"positive": "recommended", "negative": "not recommended"}),
        ("How does the critic feel about the film?", {"positive": "liked it", "negative": "disliked it"}),
        ("What is the sentiment of the review?", None),
        ("Is the opinion favourable?", POLARITY_WORDS["yes-no"]),
    )),
    "emotion": ("emotion", (
        ("How does the writer feel?", None), ("What emotion does the text express?", None),
        ("What is the writer's mood?", None), ("Which feeling comes across in the text?", None),
        ("How does the customer feel?", None), ("What is the emotional tone?", None),
    )),
    "intent": ("intent", (
        ("What does the writer want?", None), ("What is the customer asking for?", None),
        ("What is the purpose of the message?", None), ("What is the intent of the message?", None),
        ("What request is being made?", None), ("What does the customer want?", None),
    )),
    "cause": ("cause", (
        ("What prompted the message?", None), ("What is the reason for writing?", None),
        ("What happened to the customer?", None), ("What is the underlying issue?", None),
    )),
    "event": ("cause", (
        ("What happened to the writer?", None), ("What event is described?", None),
        ("What caused the feeling?", None), ("What is the news in the post?", None),
    )),
    "place": ("place", (
        ("Which place is mentioned?", None), ("Where does the text take place?", None),
        ("What location is the text about?", None), ("Where is this?", None),
    )),
    "city": ("place", (("Which city is mentioned?", None), ("Where is the writer?", None), ("Which town is the writer in?", None))),
    "country": ("place", (("Which country is mentioned?", None), ("In which country is the writer?", None), ("Which country is this about?", None))),
    "person": ("people", (
        ("Who is mentioned?", None), ("Which person is the text about?", None),
        ("Who is the main person in the text?", None), ("Which person is named most?", None),
    )),
    "organisation": ("people", (
        ("Which organisation is mentioned?", None), ("Which company or group is named?", None),
        ("What institution is involved?", None),
    )),
    "author": ("people", (("Who wrote this post?", None), ("Who is the author?", None))),
    "speaker": ("people", (("Who is speaking?", None), ("Who is the speaker?", None), ("Who said this?", None))),
    "party": ("people", (("Which party does the speaker belong to?", None), ("Is the speaker a democrat or a republican?", None))),
    "year": ("time", (("Which year is mentioned?", None), ("In which year is this set?", None), ("What year is it about?", None))),
    "date": ("time", (("When did this happen?", None), ("What date or time is mentioned?", None), ("When is this?", None))),
    "time": ("time", (("When did it happen?", None), ("When was the contact made?", None), ("What time is mentioned?", None))),
    "audience": ("audience", (
        ("Who is the intended audience?", None), ("Who is the text addressed to?", None),
        ("Who is the writer talking to?", None), ("Who is meant to read this?", None),
    )),
    "register": ("genre", (
        ("What kind of text is this?", None), ("What is the genre of the text?", None),
        ("What type of document is this?", None), ("What form of writing is this?", None),
    )),
    "formality": ("genre", (("Is the text formal or informal?", None), ("What is the register of the text?", None))),
    "satisfied": ("yes/no", (("Is the customer satisfied?", None), ("Is the writer happy with the service?", None))),
}  # fmt: skip

#: yes/no questions about a label's value: (label, value, question)
YES_NO: tuple[tuple[str, str, str], ...] = (
    ("emotion", "angry", "Is the writer angry?"),
    ("emotion", "happy", "Is the writer happy?"),
    ("emotion", "sad", "Is the writer sad?"),
    ("intent", "refund", "Does the writer want a refund?"),
    ("intent", "cancellation", "Does the customer want to cancel?"),
    ("intent", "praise", "Is the message a compliment?"),
    ("register", "movie review", "Is this a movie review?"),
    ("register", "news headline", "Is this a news headline?"),
    ("register", "email", "Is this an email?"),
    ("party", "democrat", "Is the speaker a democrat?"),
    ("sentiment", "positive", "Is the text positive?"),
    ("sentiment", "negative", "Is the news bad?"),
)
#: yes/no questions about whether a label exists: (label, question)
MENTIONS: tuple[tuple[str, str], ...] = (
    ("person", "Does the text mention a person?"),
    ("place", "Does the text mention a place?"),
    ("organisation", "Does the text mention an organisation?"),
    ("year", "Does the text mention a year?"),
)


@dataclass(frozen=True)
class Question:
    """One question about a text, its answer and its family."""

    instruction: str
    answer: str
    family: str
    label: str


def questions_for(labels: Mapping[str, str], rng: random.Random, *, ner_checked: bool) -> list[Question]:
    """Every question the labels can answer, each in one random phrasing.

    ``ner_checked``: the text went through the entity labeller, so a missing
    person or place means "no" (not merely "not looked for").
    """
    questions = []
    for label, value in labels.items():
        if label not in QUESTIONS:
            continue
        family, phrasings = QUESTIONS[label]
        instruction, answers = rng.choice(phrasings)
        if answers is None or value in answers:
            questions.append(Question(instruction, answers[value] if answers else value, family, label))
    for label, value, instruction in YES_NO:
        if label in labels:
            questions.append(
                Question(instruction, "yes" if labels[label] == value else "no", "yes/no", label)
            )
    if ner_checked:
        for label, instruction in MENTIONS:
            answer = "yes" if label in labels else "no"
            questions.append(Question(instruction, answer, "yes/no", f"mentions-{label}"))
    return questions


def about_question(topic: str, other_topic: str, rng: random.Random) -> Question:
    """ "Is the text about X?", with the true topic or another one, half and half."""
    asked, answer = (topic, "yes") if rng.random() < 0.5 else (other_topic, "no")
    return Question(f"Is the text about {asked}?", answer, "yes/no", "about")
