"""Self-distilled rows (issue 35): the untuned base model's own short answers, kept when two
wordings of a question agree, never for a question a held-out evaluation family asks."""

from __future__ import annotations

from pathlib import Path

import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.errors import InvalidArgumentError
from inbedder_integrations.training.selfdistill import (
    OPEN_QUESTIONS,
    consistent,
    distill_rows,
    grounded,
    short_span,
    source_texts,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "inbedder-qa-v2.jsonl.gz"


@pytest.mark.parametrize(
    ("answer", "span"),
    [
        ("The main point of the text is that prices rose.", "prices rose"),
        ("It is about a broken phone, which the writer wants replaced", "a broken phone"),
        ("Barack Obama\nHe was president.", "barack obama"),
        ("The writer wants a refund.", "a refund"),
        (
            "The restaurant serves sushi, ramen and tempura to its guests every day",
            "the restaurant serves sushi",
        ),
        ("One two three four five six", ""),  # a sentence, not a short answer
        ("", ""),
    ],
)
def test_a_short_span_is_the_answers_first_clause_without_its_lead_in(answer: str, span: str) -> None:
    assert short_span(answer) == span


def test_two_spans_agree_when_one_names_no_more_than_the_other() -> None:
    assert consistent("a broken phone", "broken phone")
    assert not consistent("a refund", "a replacement")
    assert not consistent("", "")


def test_a_span_is_kept_only_in_the_texts_own_words() -> None:
    text = "Hello, I bought the jacket as a gift for my dad. It's not urgent."
    assert grounded("the jacket", text) and grounded("a gift", text)
    assert not grounded("a wedding", text)  # fluent, agreed by both wordings, and not in the text
    assert not grounded("the", text)  # no content word


def test_no_open_question_asks_what_a_held_out_family_asks(engine: InBedder) -> None:
    with pytest.raises(InvalidArgumentError, match="held-out family"):
        list(distill_rows(engine, ["Dinner was sushi."], [("What food is served?", "Which dish is it?")]))


@pytest.mark.slow
def test_kept_rows_are_the_base_models_own_agreeing_answers() -> None:
    base = InBedder.from_pretrained("default", adapter=None, dtype="float32")
    texts = source_texts(DATA, 24, seed=0)
    question, paraphrase = OPEN_QUESTIONS[1]  # "Who is the text about?"
    rows = list(distill_rows(base, texts, [(question, paraphrase)]))
    assert rows, "the base model names the person of some of these texts in both wordings"
    for row in rows:
        first = short_span(base.answer([row["input"]], question, max_new_tokens=12)[0])
        second = short_span(base.answer([row["input"]], paraphrase, max_new_tokens=12)[0])
        assert row["output"] in (first, second) and consistent(first, second)
        assert 0 < len(row["output"].split()) <= 4 and row["instruction"] == question
        assert grounded(row["output"], row["input"])
