"""Evaluation metrics checked by hand, loaders on local fixtures, and the offline corpora."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inbedder_integrations.evaluation import metrics
from inbedder_integrations.evaluation.baselines import MiniLMEmbedder
from inbedder_integrations.evaluation.loaders import (
    load_bbc,
    load_clustering,
    load_lee,
    load_polarity,
    load_sts,
    load_triplets,
)
from inbedder_integrations.evaluation.suites import (
    clustering_suite,
    markdown_table,
    sts_suite,
    triplet_suite,
    write_report,
)


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
    rows = [
        {"sentence1": "a dog runs", "sentence2": "a dog is running", "score": 5.0, "instruction": "Q?"},
        {"sentence1": "a dog runs", "sentence2": "stock prices fell", "score": 0.0, "instruction": "Q?"},
        {
            "sentence1": "a man sings",
            "sentence2": "a man is singing a song",
            "score": 4.0,
            "instruction": "R?",
        },
    ]
    assert sts_suite(minilm, rows)["spearman"] > 0.4
    texts = ["goal scored in the match", "the striker scored", "shares fell", "the stock market dropped"]
    clusters = clustering_suite(minilm, {"topic?": (texts, ["sport", "sport", "money", "money"])})
    assert clusters["topic?"] == pytest.approx(1.0)
    report = {"m": {"suite": {"metric": 0.5}}}
    assert "| m | 0.500 |" in markdown_table(report)
    path = write_report(report, tmp_path / "out", {"seed": 0})
    assert "0.500" in path.read_text()
    assert json.loads((tmp_path / "out" / "report.json").read_text())["results"] == report
