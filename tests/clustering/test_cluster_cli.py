"""``inbedder cluster`` as a user runs it: the real CLI, the real default model (fp32), small corpora.

One corpus serves every check: the 30 hand-written test messages whose emotion is
angry, happy or worried (assets/eval-messages.json), five intents crossed with
them, under "How does the customer feel?": the plain structure the silhouette
missed (it chose k = 2 on such messages, angry and worried together).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from inbedder_integrations.cache import EmbeddingCache
from inbedder_integrations.clustering import ClusteringReport, answer_cache_key, draw_maps, name_clusters
from inbedder_integrations.evaluation.loaders import load_messages
from tests.cli.test_cli import run_cli

FEELING = "How does the customer feel?"
EMOTIONS = ("angry", "happy", "worried")


def _messages(folder: Path) -> Path:
    rows = [r for r in load_messages("test") if r["emotion"] in EMOTIONS]
    path = folder / "feelings.jsonl"
    path.write_text(
        "".join(json.dumps({"text": r["text"], "label": r["emotion"]}) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def _cluster(corpus: Path, output: Path, cache: Path, *extra: str):
    result = run_cli(
        "cluster", str(corpus), "--instruction", FEELING, "--output", str(output),
        "--dtype", "float32", "--cache-path", str(cache), *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result, json.loads((output / "clusters.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same command twice with one cache file, then ``-k 3 --no-names`` with a fresh one."""
    folder = tmp_path_factory.mktemp("cluster-cli")
    corpus = _messages(folder)
    first = _cluster(corpus, folder / "first", folder / "cache.sqlite")
    second = _cluster(corpus, folder / "second", folder / "cache.sqlite")
    unnamed = _cluster(corpus, folder / "unnamed", folder / "fresh.sqlite", "-k", "3", "--no-names")
    return {"folder": folder, "first": first, "second": second, "unnamed": unnamed}


def _bar_totals(stderr: str) -> list[int]:
    return [int(m) for m in re.findall(r"^cluster:.*?\d+/(\d+)", stderr.replace("\r", "\n"), re.M)]


@pytest.mark.slow
def test_k_follows_the_answers_and_the_report_keeps_the_evidence(runs):
    _, report = runs["first"]
    (result,) = report["results"]
    choice = result["k_choice"]
    assert choice["rule"] == "answers" and choice["answer_groups"] >= 3, choice
    assert choice["silhouette_k"] == 2, "the silhouette alone puts two feelings together, as in issue 37"
    agreement = {int(k): scores["agreement"] for k, scores in choice["scores"].items()}
    assert agreement[result["k"]] >= max(agreement.values()) - 0.02, choice
    assert result["k"] > choice["silhouette_k"], choice


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="known gap (docs/recipes.md, Choosing k): the model answers with synonyms ('frustrated' "
    "beside 'angry', 'thrilled' beside 'happy'), string grouping keeps them apart and the rule, "
    "fixed before measuring, follows them to k = 6",
)
def test_the_answers_choose_the_three_feelings(runs):
    _, report = runs["first"]
    (result,) = report["results"]
    assert result["k"] == 3, result["k_choice"]


@pytest.mark.slow
def test_one_bar_with_a_fixed_total(runs):
    for run in ("first", "second", "unnamed"):
        stderr = runs[run][0].stderr
        totals = _bar_totals(stderr)
        assert totals and len(set(totals)) == 1, (run, sorted(set(totals)))
        last = [line for line in stderr.replace("\r", "\n").splitlines() if line.startswith("cluster:")][-1]
        assert f"{totals[0]}/{totals[0]}" in last, last
    # 30 vectors, 30 answers (the sample is every text), up to 10 naming steps (k unknown beforehand).
    assert _bar_totals(runs["first"][0].stderr)[0] == 30 + 30 + 10
    assert _bar_totals(runs["unnamed"][0].stderr)[0] == 30, "-k with --no-names: vectors only"


@pytest.mark.slow
def test_a_rerun_reads_every_answer_from_the_cache(runs):
    _, first = runs["first"]
    _, second = runs["second"]
    assert first["answers"]["computed"] >= 30, first["answers"]
    assert second["answers"]["computed"] == 0, second["answers"]
    assert second["answers"]["from cache"] == first["answers"]["computed"]
    assert [r["assignments"] for r in second["results"]] == [r["assignments"] for r in first["results"]]
    assert [c["name"] for c in second["results"][0]["clusters"]] == [
        c["name"] for c in first["results"][0]["clusters"]
    ]
    # The answers sit in the cache file under a key of their own, one row per text (and cluster question).
    cache = EmbeddingCache(runs["folder"] / "cache.sqlite")
    keys = {model["fingerprint"]: model["vectors"] for model in cache.info()["models"]}
    cache.close()
    answer_keys = [key for key in keys if key.endswith("|answer:8")]
    assert len(answer_keys) == 1 and keys[answer_keys[0]] == first["answers"]["computed"], keys


@pytest.mark.slow
def test_no_names_asks_the_model_nothing(runs):
    result, report = runs["unnamed"]
    assert report["answers"] == {"computed": 0, "from cache": 0, "reused": 0}
    clusters = report["results"][0]["clusters"]
    assert all(c["answer_source"] == "none" and c["answers"] == [] for c in clusters)
    assert all(NAME_ONLY_WORDS.fullmatch(c["name"]) for c in clusters), [c["name"] for c in clusters]
    assert "| 3 | given |" in result.stdout


NAME_ONLY_WORDS = re.compile(r"[a-z]+(, [a-z]+)*( \(\d\))?")


@pytest.mark.slow
def test_names_are_unique_and_words_are_whole(runs):
    for run in ("first", "unnamed"):
        _, report = runs[run]
        texts = report["texts"]
        for result in report["results"]:
            names = [c["name"] for c in result["clusters"]]
            assert len(set(names)) == len(names), names
            for cluster in result["clusters"]:
                for word in cluster["words"]:
                    assert word.isalpha(), word
                    edge = r"[\w'\u2019]"
                    whole = re.compile(rf"(?<!{edge}){word}(?!{edge})|(?<!{edge}){word}['\u2019]s\b")
                    assert any(whole.search(t.lower()) for t in texts), f"{word!r} is no whole word"


@pytest.mark.slow
def test_the_report_says_what_the_scores_are_against(runs):
    result, report = runs["first"]
    assert "measured against the 'label' field of feelings.jsonl" in result.stdout
    header = next(line for line in result.stdout.splitlines() if line.startswith("| instruction"))
    assert header.endswith("| scored against |"), header
    markdown = (runs["folder"] / "first" / "clusters.md").read_text(encoding="utf-8")
    assert "3 labels: angry, happy, worried" in markdown
    assert report["labels_from"] == "the 'label' field of feelings.jsonl"


@pytest.mark.slow
def test_the_legend_is_outside_every_map(runs):
    _, saved = runs["first"]
    figure = draw_maps(ClusteringReport.from_dict(saved))
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()  # pyright: ignore[reportAttributeAccessIssue]
    for axis in figure.axes:
        legend, frame = axis.get_legend().get_window_extent(renderer), axis.get_window_extent(renderer)
        assert not legend.overlaps(frame), (legend, frame)


class _SameAnswer:
    """Answers every text and cluster question alike: the country question's "united kingdom"."""

    def answer(self, texts, instruction, *, max_new_tokens=8, show_progress=False):
        return ["United Kingdom."] * len(texts)


def test_clusters_that_share_an_answer_get_distinct_names_and_say_why():
    texts = [
        "The bank raised rates in London.", "Shares fell in London banks.", "London bank profits rose.",
        "The striker scored in Manchester.", "Manchester won the league.", "A goal for Manchester.",
        "The album topped the charts in Leeds.", "A band from Leeds sold out.", "Leeds songs on the radio.",
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    anchors = rng.normal(size=(3, 8)) * 5
    vectors = np.concatenate([a + rng.normal(size=(3, 8)) * 0.1 for a in anchors]).astype(np.float32)
    clusters = name_clusters(_SameAnswer(), texts, vectors, np.repeat(np.arange(3), 3), "Which country?")
    names = [c.name for c in clusters]
    assert len(set(names)) == 3 and all(n.startswith("united kingdom · ") for n in names), names
    assert all("3 clusters share the answer 'united kingdom'" in c.note for c in clusters)
    same_words = ["News from London today."] * 9
    clusters = name_clusters(_SameAnswer(), same_words, vectors, np.repeat(np.arange(3), 3), "Which country?")
    assert [c.name for c in clusters] == [f"united kingdom ({n})" for n in (1, 2, 3)]
    assert all(c.note for c in clusters), "each says why it shares the answer"


def test_answer_cache_key_holds_the_model_and_the_length():
    assert answer_cache_key("fp|float32|cpu", 8) != answer_cache_key("fp|float32|cpu", 16)
    assert answer_cache_key("fp|float32|cpu", 8).startswith("fp|float32|cpu")
