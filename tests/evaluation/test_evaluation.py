"""Evaluation metrics checked by hand, loaders on local fixtures, and the offline corpora."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from inbedder_integrations.errors import InvalidArgumentError
from inbedder_integrations.evaluation import metrics, splits
from inbedder_integrations.evaluation.answers import (
    EMOTIONS,
    INTENTS,
    agreement,
    canonical_emotion,
    canonical_intent,
    canonical_place,
    canonical_sentiment,
    canonical_topic,
)
from inbedder_integrations.evaluation.baselines import InBedderEmbedder, MiniLMEmbedder
from inbedder_integrations.evaluation.heldout import (
    SUITES,
    EvalSizes,
    TwoLabels,
    _suites,
    answers_suite,
    load_eval_data,
    message_answers_suite,
    messages_emotion_intent,
    offline_report,
)
from inbedder_integrations.evaluation.loaders import (
    load_bbc,
    load_bbc_ids,
    load_clustering,
    load_lee,
    load_messages,
    load_polarity,
    load_polarity_lines,
    load_sts,
    load_triplets,
)
from inbedder_integrations.evaluation.places import country_mentions, place_label
from inbedder_integrations.evaluation.suites import (
    clustering_suite,
    markdown_table,
    sts_suite,
    triplet_suite,
    write_report,
)
from inbedder_integrations.evaluation.triplets import crossed_triplets


def test_triplet_success_rate_by_hand():
    anchor = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    positive = np.array([[0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    negative = np.array([[0.0, 1.0], [1.0, 0.1], [1.0, 0.0]])
    # triplet 0: cos(a,p)=0.994 > cos(a,n)=0 -> success; 1: 0 < 0.995 -> failure; 2: success.
    assert metrics.triplet_success_rate(anchor, positive, negative) == pytest.approx(2 / 3)


def test_harmonic_mean_and_robustness_by_hand():
    assert metrics.harmonic_mean(0.5, 1.0) == pytest.approx(2 / (1 / 0.5 + 1 / 1.0))
    assert metrics.harmonic_mean(0.5, 0.0) == 0.0
    result = metrics.robustness([0.8, 0.6], [0.5, 0.5], [0.2, 0.4])
    assert result == pytest.approx(
        {"correct": 0.7, "implicit": 0.5, "incorrect": 0.3, "dci": 0.4, "dii": 0.2}
    )


def test_spearman_and_sts_by_hand():
    assert metrics.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert metrics.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    first = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    second = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # cosines 1, 0.707, 0
    assert metrics.sts_spearman(first, second, [5.0, 3.0, 1.0]) == pytest.approx(1.0)


def test_v_measure_on_separated_and_mixed_clusters():
    rng = np.random.default_rng(0)
    blobs = np.concatenate([rng.normal([10, 0], 0.1, (20, 2)), rng.normal([0, 10], 0.1, (20, 2))])
    labels = ["a"] * 20 + ["b"] * 20
    assert metrics.clustering_v_measure(blobs, labels) == pytest.approx(1.0)
    shuffled = labels[::2] + labels[1::2]
    assert metrics.clustering_v_measure(blobs, shuffled) < 0.1


def test_loaders_read_local_files_in_the_hub_formats(tmp_path):
    (tmp_path / "triplets.csv").write_text("anchor,positive,negative\nhi,hello,bye\n", encoding="utf-8")
    assert load_triplets(str(tmp_path / "triplets.csv")) == [("hi", "hello", "bye")]
    sts = tmp_path / "sts.jsonl"
    sts.write_text(
        json.dumps({"sentence1": "a", "sentence2": "b", "score": "3.5", "instruction": "Q?"}) + "\n"
    )
    assert load_sts(str(sts))[0]["score"] == 3.5
    clusters = tmp_path / "nyt.json"
    clusters.write_text(json.dumps([{"text": "t1", "cluster": 1}, {"text": "t2", "cluster": "x"}]))
    assert load_clustering(str(clusters)) == (["t1", "t2"], ["1", "x"])
    (tmp_path / "bad.csv").write_text("anchor,positive\nhi,hello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['negative'\]"):
        load_triplets(str(tmp_path / "bad.csv"))


def test_offline_corpora():
    texts, labels = load_bbc(per_topic=2)
    assert len(texts) == 10 and sorted(set(labels)) == [
        "business",
        "entertainment",
        "politics",
        "sports",
        "tech",
    ]
    assert load_bbc(per_topic=2) == (texts, labels), "the sample is fixed by the seed"
    lee, pairs = load_lee()
    assert len(lee) == 50 and len(pairs) == 50 * 49 // 2
    assert all(0.0 <= score <= 1.0 for _, _, score in pairs)
    sentences, polarity = load_polarity()
    assert len(sentences) == 200 and set(polarity) == {"pos", "neg"}


@pytest.fixture(scope="module")
def minilm():
    return MiniLMEmbedder()


def test_suites_on_small_fixtures(minilm, tmp_path):
    triplets = {"What is the intent?": [("book a flight", "reserve a plane ticket", "the cat sleeps")]}
    result = triplet_suite(minilm, triplets)
    assert result["What is the intent?"] == 1.0 and result["harmonic_mean"] == 1.0
    texts = ["goal scored in the match", "the striker scored", "shares fell", "the stock market dropped"]
    clusters = clustering_suite(minilm, {"topic?": (texts, ["sport", "sport", "money", "money"])})
    assert clusters["topic?"] == pytest.approx(1.0)
    report = {"m": {"suite": {"metric": 0.5}}}
    assert "| m | 0.500 |" in markdown_table(report)
    path = write_report(report, tmp_path / "out", {"seed": 0})
    assert "0.500" in path.read_text()
    assert json.loads((tmp_path / "out" / "report.json").read_text())["results"] == report


# Vectors by (instruction, sentence): the same sentence reads differently under each instruction.
STS_VECTORS = {
    ("Q?", "a"): [1.0, 0.0],
    ("Q?", "b"): [0.9, np.sqrt(1 - 0.9**2)],  # cos(a, b) = 0.9 under Q?
    ("Q?", "c"): [0.7, np.sqrt(1 - 0.7**2)],  # 0.7
    ("Q?", "e"): [0.0, 1.0],
    ("Q?", "f"): [np.sqrt(1 - 0.3**2), 0.3],  # cos(e, f) = 0.3
    ("R?", "a"): [0.0, 1.0],
    ("R?", "b"): [np.sqrt(1 - 0.1**2), 0.1],  # cos(a, b) = 0.1 under R? (0.9 under Q?)
    ("R?", "d"): [np.sqrt(1 - 0.5**2), 0.5],  # 0.5
}


def table_embedder(texts, instruction):
    return np.array([STS_VECTORS[instruction, text] for text in texts], dtype=np.float32)


def test_sts_suite_by_hand():
    """Each pair under its own instruction, back in row order; Spearman worked out by hand."""
    rows = [
        {"sentence1": "a", "sentence2": "b", "score": 5.0, "instruction": "Q?"},  # cosine 0.9
        {"sentence1": "a", "sentence2": "c", "score": 3.0, "instruction": "Q?"},  # 0.7
        {"sentence1": "a", "sentence2": "b", "score": 1.0, "instruction": "R?"},  # 0.1
        {"sentence1": "a", "sentence2": "d", "score": 4.0, "instruction": "R?"},  # 0.5
        {"sentence1": "e", "sentence2": "f", "score": 2.0, "instruction": "Q?"},  # 0.3
    ]
    # Ranks of the cosines 5 4 1 3 2, of the gold scores 5 3 1 4 2: d = 0 1 0 -1 0, sum d^2 = 2,
    # rho = 1 - 6 * 2 / (5 * (25 - 1)) = 0.9.  Reading every row under the first instruction
    # gives another value (or a KeyError), and so does leaving the results grouped by
    # instruction (rows 1 2 5 3 4: rho = 0.4).
    assert sts_suite(table_embedder, rows)["spearman"] == pytest.approx(0.9)


def test_every_table_names_its_split_and_shows_missing_answers_as_na(tmp_path):
    report = {
        "plain": {"bbc": {"topic_v": 0.5}, "answers": {"bbc_topic": None}},
        "inbedder": {"bbc": {"topic_v": 0.9}, "answers": {"bbc_topic": 0.75}},
    }
    markdown = write_report(report, tmp_path, {"split": "dev"}).read_text()
    headers = [line for line in markdown.splitlines() if line.startswith("| model")]
    assert len(headers) == 2 and all(line.startswith("| model (dev split) |") for line in headers)
    assert "| plain | n/a |" in markdown and "| inbedder | 0.750 |" in markdown
    assert markdown.startswith("# InBedder evaluation (dev split)")


# --------------------------------------------------------------------------- splits


def test_split_file_is_disjoint_complete_and_reproducible():
    data = splits.load_splits()
    assert data["made_by"] == splits.MADE_BY
    for corpus in ("rotten_tomatoes", "bbc", "lee", "polarity"):
        dev, test = data[corpus]["dev"], data[corpus]["test"]
        assert dev and test and not set(dev) & set(test), corpus
        assert len(set(dev)) == len(dev) and len(set(test)) == len(test), corpus
    for split in splits.SPLITS:
        topics = [id_.split("/")[0] for id_ in data["bbc"][split]]
        assert {topics.count(t) for t in set(topics)} == {splits.BBC_PER_TOPIC} and len(set(topics)) == 5
        texts, _ = load_bbc_ids(data["bbc"][split])
        assert all(texts)
    assert sorted(data["lee"]["dev"] + data["lee"]["test"]) == list(range(50))
    lines = {line: label for line, _, label in load_polarity_lines()}
    assert sorted(data["polarity"]["dev"] + data["polarity"]["test"]) == sorted(lines)
    for split in splits.SPLITS:
        assert sorted(lines[n] for n in data["polarity"][split]) == ["neg"] * 50 + ["pos"] * 50
    eligible = set(splits.eligible_movies())
    for split in splits.SPLITS:
        assert set(data["rotten_tomatoes"][split]) <= eligible
        assert len(data["rotten_tomatoes"][split]) == round(splits.RT_SHARE * len(eligible))
    assert splits.held_out_movies() == set(data["rotten_tomatoes"]["dev"]) | set(
        data["rotten_tomatoes"]["test"]
    )
    assert splits.make_splits() == data, "the committed file is what the script writes"
    assert len(splits.splits_sha256()) == 64 and splits.load_splits() is data


def test_split_ids_rejects_an_unknown_split():
    with pytest.raises(ValueError, match="split must be one of"):
        splits.split_ids("bbc", "train")


# --------------------------------------------------------------------------- labels and answers


def test_place_labeller_on_hand_written_texts():
    uk = "The UK government met in London. Britain's ministers flew to Paris afterwards."
    assert place_label(uk) == "United Kingdom"
    assert place_label("Ministers met in Berlin on Monday.") is None, "one mention is not enough"
    assert place_label("France beat Italy. The French coach praised Italy's defence.") is None, "a tie"
    assert place_label("Sydney, New South Wales: Australian firms grew.") == "Australia", "not Wales"
    assert place_label("Papua New Guinea voted; Port Moresby was calm.") == "Papua New Guinea"
    assert country_mentions("Charles Kennedy and Michael Jordan met Lewis Hamilton.") == {}
    assert country_mentions("let us go") == {}, "places are proper nouns: 'us' is not the US"
    assert place_label("Wall Street fell as US data disappointed New York traders.") == "United States"


def test_answer_canonicalisation():
    assert [canonical_sentiment(a) for a in ("Positive", "very happy", "Bad.", "angry")] == [
        "positive",
        "positive",
        "negative",
        "negative",
    ]
    assert canonical_sentiment("not good") == "negative" and canonical_sentiment("not bad") == "positive"
    assert canonical_sentiment("neither") is None and canonical_sentiment("good and bad") is None
    assert canonical_topic("Football") == "sports" and canonical_topic("Music") == "entertainment"
    assert canonical_topic("the economy") == "business" and canonical_topic("Labour") == "politics"
    assert canonical_topic("mobile phones") == "tech" and canonical_topic("Apple") is None
    assert canonical_topic("economic policy") is None, "two topics at once count as wrong"
    assert canonical_place("the UK") == "United Kingdom" and canonical_place("britain") == "United Kingdom"
    assert canonical_place("America") == "United States" and canonical_place("nowhere") is None
    assert agreement(
        ["happy", "neither", "sad"], ["positive", "positive", "negative"], canonical_sentiment
    ) == (pytest.approx(2 / 3))


def test_emotion_and_intent_answers_map_to_the_message_labels():
    assert [canonical_emotion(a) for a in ("Frustrated.", "grateful", "let down", "anxious", "neutral")] == [
        "angry",
        "happy",
        "sad",
        "worried",
        "calm",
    ]
    assert canonical_emotion("not happy") is None, "a negated feeling names no emotion"
    assert canonical_emotion("worried and angry") is None, "two emotions at once count as wrong"
    assert canonical_emotion("confused") is None and canonical_emotion("refund") is None
    assert [canonical_intent(a) for a in ("Refund", "cancel my order", "order status", "address change")] == [
        "refund",
        "cancellation",
        "order status",
        "address change",
    ]
    assert canonical_intent("product information") == "information"
    assert canonical_intent("change the delivery address") == "address change", "'delivery' is no status word"
    assert canonical_intent("happy") is None


def test_hand_written_messages_cross_every_emotion_with_every_intent():
    rows = load_messages()
    assert len(rows) == 75 and len({row["text"] for row in rows}) == 75
    cells: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        cells.setdefault((row["emotion"], row["intent"]), []).append(row["split"])
    assert set(cells) == {(e, i) for e in EMOTIONS for i in INTENTS}, "5 x 5, labels named as the answers map"
    assert all(sorted(found) == ["dev", "test", "test"] for found in cells.values())
    assert all(canonical_emotion(e) == e for e in EMOTIONS) and all(canonical_intent(i) == i for i in INTENTS)
    dev = [row["text"] for row in rows if row["split"] == "dev"]
    assert [row["text"] for row in load_messages("dev")] == dev
    with pytest.raises(InvalidArgumentError, match="split must be"):
        load_messages("train")


def test_message_answers_suite_scores_both_questions_on_the_split():
    data = messages_emotion_intent("test")
    assert len(data.texts) == 50
    angry = _Answers({"How does the customer feel?": "Angry."})
    result = message_answers_suite(angry, data, limit=100, seed=0)
    assert result["emotion"] == pytest.approx(0.2), "10 of the 50 test messages are angry"
    assert result["intent"] == 0.0, "'Angry.' names no intent"
    stub = _Answers({})
    assert message_answers_suite(stub, data, limit=20, seed=0) == {"emotion": 0.0, "intent": 0.0}
    assert stub.asked == [20, 20], "at most --answers texts per question"


def test_offline_report_runs_only_the_named_suites():
    sizes = EvalSizes(bbc_per_topic=2, rt_per_label=1, rt_movies=2, triplets=5, answers=100)
    data = load_eval_data("dev", sizes)
    stub = _Answers({"What is the customer asking for?": "a refund"})
    report = offline_report([stub], data, ["message_answers"])
    assert report == {stub.name: {"message_answers": {"emotion": 0.0, "intent": pytest.approx(0.2)}}}
    assert stub.asked == [25, 25], "the other suites never ran"
    with pytest.raises(InvalidArgumentError, match="unknown suites \\['emotion'\\]"):
        offline_report([stub], data, ["emotion"])
    assert tuple(_suites(data)) == SUITES, "one list of suites, in report order"


def test_crossed_triplets_share_the_asked_label_and_differ_in_the_other():
    asked = ["a", "a", "b", "b", "a", "c"]
    other = ["x", "y", "x", "y", "x", "z"]
    triplets = crossed_triplets(asked, other, count=50, seed=3)
    assert triplets and len(set(triplets)) == len(triplets)
    for anchor, positive, negative in triplets:
        assert asked[positive] == asked[anchor] and other[positive] != other[anchor]
        assert asked[negative] != asked[anchor] and other[negative] == other[anchor]
    assert 5 not in {i for row in triplets for i in row}, "a text with no crossed partner is never used"
    assert crossed_triplets(asked, other, count=50, seed=3) == triplets, "fixed by the seed"


def test_two_label_suites_on_the_real_split_are_crossed():
    data = load_eval_data("dev", EvalSizes(bbc_per_topic=10, rt_per_label=1, triplets=30))
    for name, two in data.two_label.items():
        (first, (_, a)), (second, (_, b)) = two.labels.items()
        for metric, asked, other in ((first, a, b), (second, b, a)):
            rows = data.triplets[name][metric]
            assert len(rows) == 30, (name, metric)
            assert all(asked[p] == asked[x] != asked[n] for x, p, n in rows)
            assert all(other[n] == other[x] != other[p] for x, p, n in rows)
    assert data.describe()["bbc_articles"] == 50 and data.describe()["lee_pairs"] == 25 * 24 // 2


class _Answers:
    """A stub embedder that answers each question with a fixed reply ('none' otherwise)."""

    name = "stub answers"

    def __init__(self, replies: dict[str, str]) -> None:
        self.replies, self.asked = replies, []

    def __call__(self, texts, instruction):
        return np.ones((len(texts), 2), np.float32)

    def answer(self, texts, question):
        self.asked.append(len(texts))
        return [self.replies.get(question, "none")] * len(texts)


class _AlwaysPositive:
    """A stub embedder whose every answer is 'Positive.', to check the answer plumbing without a model."""

    name = "stub"

    def __call__(self, texts, instruction):
        return np.ones((len(texts), 2), np.float32)

    def answer(self, texts, question):
        return ["Positive."] * len(texts)


def test_answers_suite_scores_canonical_answers_against_the_split_labels():
    data = load_eval_data("dev", EvalSizes(bbc_per_topic=4, rt_per_label=1, rt_movies=5, answers=100))
    result = answers_suite(_AlwaysPositive(), data)
    assert result["polarity_sentiment"] == 0.5, "50 positive and 50 negative sentences in the split"
    assert result["rt_sentiment"] == 0.5, "one fresh and one rotten review per movie"
    assert result["bbc_topic"] == 0.0 and result["bbc_place"] == 0.0, "'positive' names no topic or country"


def test_nearest_neighbour_accuracy_by_hand():
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert metrics.nearest_neighbour_accuracy(vectors, ["a", "a", "b", "b"]) == 1.0
    assert metrics.nearest_neighbour_accuracy(vectors, ["a", "b", "a", "b"]) == 0.0


@pytest.mark.slow
def test_heldout_suites_end_to_end_on_the_default_model(engine, minilm, tmp_path):
    sizes = EvalSizes(bbc_per_topic=4, rt_per_label=1, triplets=6, rt_movies=3, answers=4)
    data = load_eval_data("dev", sizes)
    place = data.two_label["bbc_topic_place"]
    data = replace(  # shorter texts, same labels and triplets: the suites' plumbing, not the scores
        data,
        bbc_texts=[text[:500] for text in data.bbc_texts],
        two_label={
            **data.two_label,
            "bbc_topic_place": TwoLabels([t[:500] for t in place.texts], place.labels),
        },
        lee_texts=[text[:500] for text in data.lee_texts[:4]],
        lee_pairs=[(i, j, s) for i, j, s in data.lee_pairs if i < 4 and j < 4],
        polarity_texts=data.polarity_texts[:3] + data.polarity_texts[-3:],
        polarity_labels=data.polarity_labels[:3] + data.polarity_labels[-3:],
    )
    suites = [suite for suite in SUITES if suite != "heldout_families"]  # its own test: test_heldout_families
    report = offline_report([minilm, InBedderEmbedder(engine, "default")], data, suites)
    plain, tuned = report[minilm.name], report["default"]
    assert set(plain["answers"].values()) == {None}, "MiniLM has no answers: n/a"
    assert all(0.0 <= value <= 1.0 for value in tuned["answers"].values())
    assert set(plain["message_answers"].values()) == {None}
    assert set(tuned["message_answers"]) == {"emotion", "intent"}
    for suite in ("bbc_topic_place", "rt_sentiment_movie", "messages_emotion_intent"):
        values = list(tuned[suite].values())
        assert len(values) == 3 and all(0.0 <= value <= 1.0 for value in values)
    assert -1.0 <= tuned["lee"]["spearman"] <= 1.0 and 0.0 <= tuned["polarity"]["knn_acc"] <= 1.0
    markdown = write_report(report, tmp_path, {"split": "dev"}).read_text()
    assert "model (dev split)" in markdown and "n/a" in markdown
