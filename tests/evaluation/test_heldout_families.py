"""The held-out question families (issue 35): their split, their assets, the check that keeps
them out of training, and the suite that measures them."""

from __future__ import annotations

import gzip
import json
import math
import re
import statistics
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from inbedder_integrations.errors import InvalidArgumentError
from inbedder_integrations.evaluation.family_answers import CANONICAL, collapse, label_share
from inbedder_integrations.evaluation.family_suite import (
    FAMILIES_PATH,
    FamilyData,
    family_suite,
    hand_written_texts,
    heldout_families_suite,
    load_families,
    load_family_texts,
)
from inbedder_integrations.evaluation.heldout import EvalSizes, load_eval_data, offline_report
from inbedder_integrations.evaluation.heldout_families import (
    FAMILIES,
    SENTINEL,
    families_of,
    forbidden_file_rows,
    forbidden_instruction,
    forbidden_rows,
)
from inbedder_integrations.evaluation.suites import write_report
from inbedder_integrations.evaluation.triplets import crossed_triplets
from inbedder_integrations.training.leakage import LeakageIndex, check_file, evaluation_texts

QA_FILE = Path(__file__).resolve().parents[2] / "data" / "inbedder-qa.jsonl.gz"

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


# --------------------------------------------------------------------------- the texts


def _asset() -> dict:
    return json.loads(FAMILIES_PATH.read_text(encoding="utf-8"))["families"]


def test_every_hand_written_family_crosses_every_a_value_with_every_b_value():
    families = _asset()
    assert set(families) == {f.slug for f in FAMILIES} - {"tense"}, "tense is BBC text, the rest are here"
    every_text = [row["text"] for entry in families.values() for row in entry["texts"]]
    assert len(set(every_text)) == len(every_text), "no text twice"
    normalised = {" ".join(re.findall(r"[a-z]+", text.lower())) for text in every_text}
    assert len(normalised) == len(every_text), "no two texts differ only in case or punctuation"
    for family in FAMILIES:
        if family.slug == "tense":
            continue
        texts, a, b = load_family_texts(family)
        cells = Counter(zip(a, b, strict=True))
        assert set(cells) == {(x, y) for x in family.values for y in family.other_values}, family.slug
        assert min(cells.values()) >= 2, (family.slug, cells)
        assert 32 <= len(texts) <= 48, family.slug
        labels = families[family.slug]["labels"]
        assert labels == {family.slug: list(family.values), family.other: list(family.other_values)}


def test_the_a_attribute_is_worded_in_more_than_one_way():
    """A family whose every text names its label outright would test keyword matching, not the question."""
    for family in FAMILIES:
        if family.slug in ("tense", "language", "animal_mention"):
            continue  # tense and language are properties of the text; yes/no names no value
        texts, a, _ = load_family_texts(family)
        named = sum(
            re.search(rf"\b{label}", text, re.I) is not None for text, label in zip(texts, a, strict=True)
        )
        assert named <= 0.6 * len(texts), (family.slug, named)


def test_language_family_is_each_sentence_in_four_languages():
    rows = _asset()["language"]["texts"]
    by_sentence: dict[int, list[dict]] = {}
    for row in rows:
        by_sentence.setdefault(row["sentence"], []).append(row)
    assert len(by_sentence) == 12
    for versions in by_sentence.values():
        assert sorted(r["language"] for r in versions) == ["english", "french", "german", "spanish"]
        assert len({r["topic"] for r in versions}) == 1, "a translation keeps its topic"


def test_a_mislabelled_text_is_refused_with_its_place(tmp_path):
    families = _asset()
    families["people_count"]["texts"][3]["people_count"] = "seven"
    path = tmp_path / "families.json"
    path.write_text(json.dumps({"families": families}))
    family = next(f for f in FAMILIES if f.slug == "people_count")
    with pytest.raises(InvalidArgumentError, match="people_count text 3 is labelled 'seven'"):
        load_family_texts(family, path)


def test_dev_families_load_without_the_test_families():
    families = load_families("dev", triplets=50)
    assert tuple(families) == tuple(f.slug for f in families_of("dev"))
    for data in families.values():
        a, b = data.labels_a, data.labels_b
        assert len(data.triplets_a) == len(data.triplets_b) == 50
        assert all(a[p] == a[x] != a[n] and b[n] == b[x] != b[p] for x, p, n in data.triplets_a)
        assert all(b[p] == b[x] != b[n] and a[n] == a[x] != a[p] for x, p, n in data.triplets_b)


def test_hand_written_texts_are_in_the_leakage_check():
    texts = set(hand_written_texts())
    assert len(texts) == sum(len(entry["texts"]) for entry in _asset().values())
    assert texts <= set(evaluation_texts())


@pytest.mark.slow
def test_no_held_out_family_text_shares_eight_words_with_the_committed_training_set():
    assert check_file(QA_FILE, LeakageIndex(hand_written_texts())) == {}


# --------------------------------------------------------------------------- answers and metrics


@pytest.mark.parametrize(
    ("slug", "answer", "value"),
    [
        ("time_of_day", "In the early morning.", "morning"),
        ("time_of_day", "late at night", "night"),
        ("time_of_day", "morning or evening", None),
        ("time_of_day", "3 pm", "afternoon"),
        ("time_of_day", "at 1 a.m.", "night"),
        ("time_of_day", "7:30 pm", "evening"),
        ("time_of_day", "three o'clock", None),
        ("profession", "She is a physician.", "doctor"),
        ("profession", "food", None),
        ("animal_mention", "Yes.", "yes"),
        ("animal_mention", "a puppy", "yes"),
        ("animal_mention", "No, it does not.", "no"),
        ("instrument", "the fiddle", "violin"),
        ("people_count", "2 people", "two"),
        ("people_count", "12", "many"),
        ("people_count", "twelve", "many"),
        ("people_count", "alone", "one"),
        ("cuisine", "Sushi", "japanese"),
        ("cuisine", "food", None),
        ("language", "Français", "french"),
        ("tense", "past tense", "past"),
        ("relationship", "They are colleagues.", "coworkers"),
        ("relationship", "husband and wife", "married couple"),
        ("season", "Autumn", "autumn"),
    ],
)
def test_family_canonicalisers(slug, answer, value):
    assert CANONICAL[slug](answer) == value


def test_collapse_is_the_most_common_answers_share():
    canonical = CANONICAL["cuisine"]
    answers = ["Food.", "food", "FOOD!", "sushi", "Japanese", "pizza", "tacos", "a restaurant"]
    # 'Food.', 'food' and 'FOOD!' normalise alike (3); 'sushi' and 'Japanese' share a value (2)
    assert collapse(answers, canonical) == 3 / 8
    assert collapse(["italian", "pasta", "pizza"], canonical) == 1.0, "one value in three wordings"
    assert label_share(["a", "a", "b", "c"]) == 0.5
    assert math.isnan(collapse([], canonical))


class _Fake:
    """A tiny fake embedder: one-hot of the attribute its ``follows`` map picks per question,
    and a fixed answer.  It needs no model: the suite's arithmetic is what is tested."""

    def __init__(self, labels: dict[str, tuple[str, str]], follows: dict[str, int], reply: str | None):
        self.name, self.labels, self.follows, self.reply = "fake", labels, follows, reply
        self.values = sorted({v for pair in labels.values() for v in pair})

    def __call__(self, texts, instruction):
        k = self.follows[instruction]
        return np.stack([np.eye(len(self.values))[self.values.index(self.labels[t][k])] for t in texts])

    def answer(self, texts, question):
        return None if self.reply is None else [self.reply] * len(texts)


def _tiny_family() -> FamilyData:
    family = next(f for f in FAMILIES if f.slug == "people_count")
    texts = [f"text {i}" for i in range(8)]
    a = ["one", "one", "two", "two", "one", "one", "two", "two"]
    b = ["beach", "park", "beach", "park", "beach", "park", "beach", "park"]
    return FamilyData(family, texts, a, b, crossed_triplets(a, b, 40, 0), crossed_triplets(b, a, 40, 0))


def test_family_suite_on_a_fake_embedder_that_follows_the_question():
    data = _tiny_family()
    labels = {t: (a, b) for t, a, b in zip(data.texts, data.labels_a, data.labels_b, strict=True)}
    questions = {data.family.question: 0, data.family.other_question: 1}
    result = family_suite(_Fake(labels, questions, "Two people."), data)
    assert result["triplets_a"] == 1.0 and result["triplets_b"] == 1.0
    assert result["agreement"] == 0.5, "'Two people.' is right for the 4 texts of two"
    assert result["collapse"] == 1.0 and result["label_share"] == 0.5
    assert [row["canonical"] for row in result["answers"]] == ["two"] * 8
    assert result["answers"][0] == {
        "text": "text 0",
        "label": "one",
        "answer": "Two people.",
        "canonical": "two",
    }


def test_family_suite_on_a_fake_embedder_that_ignores_the_question():
    """Vectors of the distractor under both questions: every triplet under A fails, every one under
    B succeeds; a plain embedder has no answers (None, shown as n/a)."""
    data = _tiny_family()
    labels = {t: (a, b) for t, a, b in zip(data.texts, data.labels_a, data.labels_b, strict=True)}
    questions = {data.family.question: 1, data.family.other_question: 1}
    result = family_suite(_Fake(labels, questions, None), data)
    assert result["triplets_a"] == 0.0 and result["triplets_b"] == 1.0
    assert result["agreement"] is None and result["collapse"] is None and "answers" not in result


def test_heldout_families_suite_scores_by_the_fixed_rule():
    data = _tiny_family()
    labels = {t: (a, b) for t, a, b in zip(data.texts, data.labels_a, data.labels_b, strict=True)}
    follows = {data.family.question: 0, data.family.other_question: 1}
    other = replace(data, family=replace(data.family, slug="instrument"))  # 'alone' names no instrument
    ignoring = {data.family.question: 1, data.family.other_question: 1}
    good, bad = _Fake(labels, follows, "alone"), _Fake(labels, ignoring, "alone")
    result = heldout_families_suite(good, {"people_count": data})
    assert result["score"] == (1.0 + 0.5) / 2 and result["mean_agreement"] == 0.5
    result = heldout_families_suite(bad, {"people_count": data, "instrument": other})
    assert result["mean_triplets_a"] == 0.0 and result["mean_agreement"] == 0.25
    assert result["score"] == ((0.0 + 0.5) / 2 + (0.0 + 0.0) / 2) / 2
    plain = heldout_families_suite(_Fake(labels, follows, None), {"people_count": data})
    assert plain["score"] is None and plain["mean_agreement"] is None and plain["mean_triplets_a"] == 1.0


def test_offline_report_runs_the_dev_families_and_writes_their_table(tmp_path):
    data = load_eval_data("dev", EvalSizes(bbc_per_topic=2, rt_per_label=1, rt_movies=2, triplets=20))
    report = offline_report([_Constant()], data, ["heldout_families"])
    result = report["constant"]["heldout_families"]
    assert list(result["families"]) == [f.slug for f in families_of("dev")]
    assert result["mean_triplets_a"] == 0.0, "identical vectors: no anchor is closer to its positive"
    assert result["families"]["animal_mention"]["agreement"] == 0.5, "'no' is right for half"
    assert data.describe()["heldout_families"]["people_count"] == {
        "texts": 32, "triplets_a": 20, "triplets_b": 20
    }  # fmt: skip
    markdown = write_report(report, tmp_path, {"split": "dev"}).read_text()
    assert "Held-out question families" in markdown and "| constant | animal_mention |" in markdown
    assert "cross_lingual_topic" not in markdown, "the language family is a test family"


class _Constant:
    name = "constant"

    def __call__(self, texts, instruction):
        return np.ones((len(texts), 3), np.float32)

    def answer(self, texts, question):
        return ["No."] * len(texts)


# --------------------------------------------------------------------------- the tense labeller


@pytest.mark.parametrize(
    ("sentence", "tense"),
    [
        ("The company reported a large loss for the last three months of the year.", "past"),
        ("Shares in the firm will open higher on Monday after the strong results.", "future"),
        ("The company makes cars in three countries and employs thousands of workers.", "present"),
        ("The minister said that prices will rise again next year in most regions.", None),  # mixed
        ("Prices have risen sharply this year in almost every shop in the country.", None),  # perfect
        ("The company could report a large loss for the last three months.", None),  # another modal
        ("He said: the company makes cars in three countries and employs thousands.", None),  # quoted
        ("The firm grew fast.", None),  # too short to be a fair test of the question
    ],
)
def test_spacy_morphology_labels_only_sentences_of_one_tense(sentence, tense):
    from inbedder_integrations.evaluation.tense import sentence_tense, tense_pipeline

    doc = tense_pipeline()(sentence)
    assert sentence_tense(next(iter(doc.sents))) == tense


# --------------------------------------------------------------------------- choosing a run


def _results(shift: float = 0.0, families: float = 0.5, emotion: float = 0.9) -> dict:
    """One model's dev results with every suite the rules read."""
    return {
        "bbc_topic_place": {"topic": 0.9, "place": 0.8, "hmean": 0.8 + shift},
        "rt_sentiment_movie": {"sentiment": 0.7, "movie": 0.6, "hmean": 0.6},
        "messages_emotion_intent": {"emotion": emotion, "intent": 0.9, "hmean": 0.9},
        "bbc": {"topic_v": 0.8, "feel_v": 0.2, "good_bad_v": 0.2},
        "polarity": {"knn_acc": 0.8},
        "answers": {"polarity_sentiment": 0.8, "bbc_topic": 0.8, "bbc_place": 0.8, "rt_sentiment": 0.8},
        "message_answers": {"emotion": 0.8, "intent": 0.8},
        "heldout_families": {
            "families": {
                f.slug: {"triplets_a": families, "agreement": families / 2} for f in families_of("dev")
            }
        },
    }


def _write(tmp_path: Path, name: str, results: dict, split: str = "dev") -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"settings": {"split": split}, "results": results}))
    return path


def test_choose_run_scores_half_old_rule_half_held_out_dev_families(tmp_path, capsys):
    from tests.conftest import load_recipe

    choose_run = load_recipe("choose_run")
    old = statistics.mean([0.8, 0.6, 0.8, 0.8, 0.8, 0.8])
    merged = {"shipped": _results(), "wider": _results(families=0.9), "narrow": _results(families=0.3)}
    scored, refused, skipped = choose_run.choose(merged, "shipped", "auto")
    scores = {model: score for score, model, _ in scored}
    assert scores["wider"] == pytest.approx(0.5 * old + 0.5 * (0.9 + 0.45) / 2)
    assert scores["shipped"] == pytest.approx(0.5 * old + 0.5 * (0.5 + 0.25) / 2)
    assert not refused and not skipped
    assert choose_run.choose(merged, "shipped", "issue27")[0][0][0] == pytest.approx(old), "the old rule"
    assert tuple(f.slug for f in families_of("dev")) == choose_run.DEV_FAMILIES, "the script's own copy"


def test_choose_run_refuses_a_run_that_loses_an_existing_dev_figure(tmp_path):
    from tests.conftest import load_recipe

    choose_run = load_recipe("choose_run")
    merged = {
        "shipped": _results(),
        "lost emotion": _results(families=0.9, emotion=0.87),  # messages emotion triplets: 0.03 below
        "kept": _results(families=0.9, emotion=0.885),
    }
    merged["no answers"] = {**_results(), "answers": {"bbc_topic": None}}
    scored, refused, skipped = choose_run.choose(merged, "shipped", "issue35")
    assert refused == {"lost emotion": ["messages_emotion_intent emotion"]}
    assert skipped == {"no answers": "no answers (a plain embedder)"}
    best = max((item for item in scored if item[1] not in refused), key=lambda item: item[0])
    assert best[1] == "kept"


def test_choose_run_merges_reports_and_keeps_the_old_rule_for_old_reports(tmp_path, capsys, monkeypatch):
    from tests.conftest import load_recipe

    choose_run = load_recipe("choose_run")
    full = _results()
    families = {"heldout_families": full.pop("heldout_families")}
    old_style = _write(tmp_path, "old", {"run": full})
    assert choose_run.choose(choose_run.merge_reports([old_style]), None, "auto")[0][0][2] == (
        choose_run.rule_parts(full)
    ), "a report without the suite is scored as before"
    merged = choose_run.merge_reports([old_style, _write(tmp_path, "new", {"run": families})])
    assert set(merged["run"]) == set(full) | {"heldout_families"}
    with pytest.raises(SystemExit, match="in another report too"):
        choose_run.merge_reports([old_style, old_style])
    with pytest.raises(SystemExit, match="choose on dev only"):
        choose_run.merge_reports([_write(tmp_path, "test", {"run": full}, split="test")])
    monkeypatch.setattr("sys.argv", ["choose_run", str(old_style), str(tmp_path / "new.json")])
    choose_run.main()
    assert "chosen: run" in capsys.readouterr().out


@pytest.fixture(scope="module")
def minilm():
    from inbedder_integrations.evaluation.baselines import MiniLMEmbedder

    return MiniLMEmbedder()


@pytest.mark.slow
def test_heldout_families_on_the_default_model_and_minilm(engine, minilm):
    """The real default answers and embeds 8 texts (2 x 2 cells, 2 texts each) of two dev families;
    MiniLM has no answers."""
    from inbedder_integrations.evaluation.baselines import InBedderEmbedder

    full = load_families("dev", triplets=6)
    families = {}
    for slug in ("animal_mention", "instrument"):
        data, family = full[slug], full[slug].family
        cells = {(x, y): 0 for x in family.values[:2] for y in family.other_values[:2]}
        keep = []
        for i, cell in enumerate(zip(data.labels_a, data.labels_b, strict=True)):
            if cells.get(cell, 2) < 2:  # two texts of each of the 2 x 2 cells
                cells[cell] += 1
                keep.append(i)
        a, b = [data.labels_a[i] for i in keep], [data.labels_b[i] for i in keep]
        families[slug] = FamilyData(
            data.family, [data.texts[i] for i in keep], a, b,
            crossed_triplets(a, b, 6, 0), crossed_triplets(b, a, 6, 0),
        )  # fmt: skip
    tuned = heldout_families_suite(InBedderEmbedder(engine, "default"), families)
    plain = heldout_families_suite(minilm, families)
    assert plain["score"] is None and all(f["agreement"] is None for f in plain["families"].values())
    assert 0.0 <= tuned["score"] <= 1.0
    for slug, figures in tuned["families"].items():
        assert len(figures["answers"]) == 8 and all(isinstance(r["answer"], str) for r in figures["answers"])
        assert figures["collapse"] >= 0.1 and 0.0 <= figures["agreement"] <= 1.0, slug
    # MiniLM ignores the question: its vectors, hence its triplets, are the same under A and B
    vectors = minilm(families["instrument"].texts, "")
    assert np.allclose(vectors, minilm(families["instrument"].texts, families["instrument"].family.question))
