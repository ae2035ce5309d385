"""The held-out question families (issue 35): their split, their assets, the check that keeps
them out of training, and the suite that measures them."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from inbedder_integrations.evaluation.heldout_families import (
    FAMILIES,
    SENTINEL,
    families_of,
    forbidden_file_rows,
    forbidden_instruction,
    forbidden_rows,
)

QA_FILE = Path(__file__).resolve().parents[1] / "data" / "inbedder-qa.jsonl.gz"

#: Instructions of the committed QA set (the one the shipped adapter was trained on, built before
#: the families were fixed) that the broad check flags: a date question worded "what time", and
#: three topic yes/no questions.  None asks a family's own question; a new training set must drop them.
FLAGGED_IN_SHIPPED_SET = {
    "What time is mentioned?": "time_of_day",
    "Is the text about music?": "instrument",
    "Is the text about food?": "cuisine",
    "Is the text about language?": "language",
}


def test_dev_and_test_families_are_disjoint_and_the_sentinel_is_test_only():
    dev, test = families_of("dev"), families_of("test")
    assert len(dev) == len(test) == 5
    assert not {f.slug for f in dev} & {f.slug for f in test}
    assert SENTINEL in {f.slug for f in test} and SENTINEL not in {f.slug for f in dev}
    assert {f.slug for f in dev} | {f.slug for f in test} == {f.slug for f in FAMILIES}
    with pytest.raises(ValueError, match="split"):
        families_of("train")


@pytest.mark.parametrize(
    ("instruction", "family"),
    [
        ("At what time of day does this happen?", "time_of_day"),
        ("Is it morning or evening in the story?", "time_of_day"),
        ("What is her job?", "profession"),
        ("What does he do for a living?", "profession"),
        ("Is there a pet in the text?", "animal_mention"),
        ("Which creature is described?", "animal_mention"),
        ("What is being played, a piano or a guitar?", "instrument"),
        ("How many people are there?", "people_count"),
        ("What is the number of guests?", "people_count"),
        ("Which cuisine is it?", "cuisine"),
        ("What dishes are on the menu?", "cuisine"),
        ("Is this written in Spanish?", "language"),
        ("What tense is used?", "tense"),
        ("Is the sentence about the past?", "tense"),
        ("How are the two people related?", "relationship"),
        ("Are they married or colleagues?", "relationship"),
        ("Which season is it?", "season"),
        ("What time of year is it?", "season"),
        # the committed set's own families: none is a held-out attribute
        ("What is the topic of this text?", None),
        ("Which category does this text belong to?", None),
        ("How does the writer feel?", None),
        ("Which country is mentioned?", None),
        ("When did this happen?", None),
        ("Who is the main person in the text?", None),
        ("Is the text positive or negative?", None),
    ],
)
def test_forbidden_instruction_names_the_family_asked(instruction, family):
    assert forbidden_instruction(instruction) == family


def test_every_family_question_is_caught_but_no_distractor_question():
    for family in FAMILIES:
        assert forbidden_instruction(family.question) == family.slug
        if family.other_question:
            assert forbidden_instruction(family.other_question) is None, family.other_question
    assert forbidden_rows(["What is this about?", "Which season is it?"]) == {1: "season"}


def test_committed_training_set_never_asks_a_held_out_question():
    with gzip.open(QA_FILE, "rt", encoding="utf-8") as handle:
        instructions = {json.loads(line)["instruction"].strip().lower() for line in handle}
    for family in FAMILIES:
        for question in (family.question,):
            assert question.lower() not in instructions, family.slug
    flagged = {instruction: family for family, instruction in forbidden_file_rows(QA_FILE).values()}
    assert flagged == FLAGGED_IN_SHIPPED_SET


def test_forbidden_file_rows_reads_a_new_training_file(tmp_path):
    path = tmp_path / "qa.jsonl"
    rows = [
        {"instruction": "What is the topic?", "input": "a", "output": "b"},
        {"instruction": "Which instrument does she play?", "input": "a", "output": "piano"},
        {"instruction": "How does the writer feel?", "input": "a", "output": "sad"},
        {"instruction": "In what season is this set?", "input": "a", "output": "winter"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert forbidden_file_rows(path) == {
        1: ("instrument", "Which instrument does she play?"),
        3: ("season", "In what season is this set?"),
    }
