"""Clustering one corpus under several instructions: real BBC News, real sklearn, real files."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from tqdm.auto import tqdm

from inbedder_integrations import InBedder
from inbedder_integrations.clustering import (
    BBC_INSTRUCTIONS,
    NAME_SEPARATOR,
    NO_ANSWER,
    LabelledCorpus,
    class_tfidf,
    cluster_corpus,
    cluster_name,
    cluster_vectors,
    distinctive_words,
    instructions_for,
    label_metrics,
    load_corpus,
    name_clusters,
    write_report,
)
from inbedder_integrations.clustering.names import (
    MIN_AGREEING_SHARE,
    agreed_answer,
    answer_groups,
    cluster_prompt,
)
from tests.cli.test_cli import run_cli
from tests.conftest import load_recipe

TOPIC = BBC_INSTRUCTIONS[0]
FEELING = "How does the writer feel?"


def blobs(centres: int, per_centre: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    anchors = rng.normal(size=(centres, 16)) * 5
    points = np.concatenate([anchor + rng.normal(size=(per_centre, 16)) * 0.2 for anchor in anchors])
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("method", ["kmeans", "agglomerative"])
def test_silhouette_finds_the_number_of_groups(method):
    for centres in (3, 4):
        assignments, k = cluster_vectors(blobs(centres), method=method)
        assert k == centres
        assert label_metrics(np.repeat(np.arange(centres), 12).astype(str), assignments)["v_measure"] == 1.0


def test_label_metrics_by_hand():
    assert label_metrics(["a", "a", "b", "b"], np.array([1, 1, 0, 0])) == {
        "v_measure": 1.0,
        "nmi": 1.0,
        "ari": 1.0,
    }
    # Every cluster holds one of each label: no information (V = NMI = 0), and ARI
    # = (0 - 2*2/6) / (2 - 2*2/6) = -0.5.
    crossed = label_metrics(["a", "a", "b", "b"], np.array([0, 1, 0, 1]))
    assert crossed["v_measure"] == pytest.approx(0.0, abs=1e-12)
    assert crossed["nmi"] == pytest.approx(0.0, abs=1e-12)
    assert crossed["ari"] == pytest.approx(-0.5)


def test_bad_arguments_are_named():
    vectors = blobs(2, per_centre=3)
    with pytest.raises(ValueError, match="k must be an int from 2 to 5"):
        cluster_vectors(vectors, k=6)
    with pytest.raises(ValueError, match="method must be one of"):
        cluster_vectors(vectors, method="dbscan")
    with pytest.raises(ValueError, match="at least 3 texts"):
        cluster_vectors(vectors[:2])


# Three hand-made clusters.  "report" is the most frequent word in every one of
# them (3 of 13, 13 and 11 words), so plain term frequency, or any score that
# looks at one cluster only, names all three clusters "report"; c-TF-IDF must not.
# "the" (a stop word) and "2004" (a number) are frequent too and never appear.
TOY = {
    "sport": [
        "The report, the 2004 report: the team won the match with a goal.",
        "The striker's goal won the match.",
        "The report on the team coach.",
    ],
    "money": [
        "The report, the 2004 report: the bank shares rose on profit.",
        "The market shares fell, profit 2004.",
        "The report on the bank rates.",
    ],
    "music": [
        "The report, the 2004 report: the band album song.",
        "The singer's album song.",
        "The report on the band tour.",
    ],
}
TOY_TEXTS = [text for group in TOY.values() for text in group]


def test_class_tfidf_matches_the_formula_by_hand():
    vocabulary, scores = class_tfidf(list(TOY.values()))
    assert "the" not in vocabulary and "2004" not in vocabulary and "s" not in vocabulary
    dense = scores.toarray()
    # Words per class: 13, 13, 11, so A = 37 / 3; "report" occurs 9 times in all,
    # "team" twice, both in sport.
    average = 37 / 3
    assert dense[0, vocabulary.index("team")] == pytest.approx(2 / 13 * math.log(1 + average / 2))
    assert dense[0, vocabulary.index("report")] == pytest.approx(3 / 13 * math.log(1 + average / 9))
    assert dense[1, vocabulary.index("team")] == 0.0


def test_distinctive_words_set_each_cluster_apart():
    words = distinctive_words(list(TOY.values()), top=3)
    # Ties (goal, match, team, won: 2 each, only in sport) are broken alphabetically.
    assert words == [["goal", "match", "team"], ["bank", "profit", "shares"], ["album", "band", "song"]]
    assert all("report" not in top for top in words), "frequent in every cluster: it sets none apart"
    assert distinctive_words([["the 2004"], ["a 99"]]) == [[], []], "no word left: no word named"


def test_a_word_as_frequent_everywhere_is_never_named():
    # "said" is 4 of 16 words in each cluster: c-TF-IDF alone only lowers it to
    # second place (few clusters make a weak idf), below the one word each cluster
    # has twice and above the ten it has once.  Its share is the same everywhere,
    # so it sets no cluster apart and is not named.
    groups = [
        [f"said said said said {p}{p} {p}{p} " + " ".join(f"{p}{n}" for n in "abcdefghij")] for p in "xyz"
    ]
    vocabulary, scores = class_tfidf(groups)
    ranked = [vocabulary[i] for i in np.argsort(-scores.toarray()[0], kind="stable")[:3]]
    assert ranked == ["xx", "said", "xa"], "the premise: c-TF-IDF alone ranks it second"
    assert distinctive_words(groups, top=3) == [[f"{p}{p}", f"{p}a", f"{p}b"] for p in "xyz"]


def test_cluster_name_format():
    words = ["labour", "blair", "election", "party"]
    assert cluster_name("politics", words, fallback="cluster 0") == "politics · labour, blair, election"
    assert NAME_SEPARATOR == " · "
    assert cluster_name("labour party", words, fallback="x") == "labour party · blair, election", (
        "words the answer already says are not repeated"
    )
    assert cluster_name(None, words, fallback="x") == "labour, blair, election", "no answer: the words alone"
    assert cluster_name("politics", [], fallback="x") == "politics"
    assert cluster_name(None, [], fallback="cluster 3") == "cluster 3"


class CannedAnswers:
    """Fixed answers per text, and per cluster question: the naming logic without loading a model.

    A cluster question (a prompt that :func:`cluster_prompt` built) is answered by
    ``about``'s answer for the first key word it names.
    """

    def __init__(
        self, answers: list[str], about: dict[str, str] | None = None, texts: list[str] = TOY_TEXTS
    ) -> None:
        self.answers = dict(zip(texts, answers, strict=True))
        self.about = about or {}
        self.calls: list[list[str]] = []

    def answer(
        self, texts: list[str], instruction: str, *, max_new_tokens: int = 8, show_progress: object = False
    ) -> list[str]:
        self.calls.append(list(texts))
        return [self.answers[text] if text in self.answers else self._about(text) for text in texts]

    def _about(self, prompt: str) -> str:
        key_words = prompt.rsplit("Key words: ", 1)[1].split(", ")
        return self.about[key_words[0]]


def name_toy(engine: CannedAnswers | None) -> list:
    """The toy clusters named, on well-separated vectors (3 members each)."""
    assignments = np.repeat(np.arange(3), 3)
    return name_clusters(engine, TOY_TEXTS, blobs(3, per_centre=3), assignments, "What is the topic?")


def test_names_combine_the_agreed_answer_and_the_distinctive_words():
    # sport: three different answers, no agreement: the model is asked about the cluster;
    # money: "business" twice once normalised; music: no answer at all, nor about the cluster.
    answers = ["Sport.", "The football", "", "Business", "business.", "Economy", "", " ", "\n"]
    engine = CannedAnswers(answers, about={"goal": "Sports", "album": ""})
    clusters = name_toy(engine)
    assert [c.name for c in clusters] == [
        "sports · goal, match, team",
        "business · bank, profit, shares",
        "album, band, song",
    ]
    assert [c.answer_source for c in clusters] == ["cluster", "agreement", "none"]
    assert clusters[0].answers == [("sport", 1), ("football", 1), (NO_ANSWER, 1)], "ties in centroid order"
    assert clusters[2].answers == [(NO_ANSWER, 3)], "blank answers are counted, never a name"
    assert len(engine.calls) == 2, "the members in one call, both undecided clusters in one more"
    assert len(engine.calls[1]) == 2 and all("Key words: " in prompt for prompt in engine.calls[1])
    saved = clusters[1].to_dict()
    assert saved["words"][:3] == ["bank", "profit", "shares"] and len(saved["words"]) == 5
    assert saved["answers"] == [("business", 2), ("economy", 1)] and saved["answer_source"] == "agreement"
    unasked = name_toy(None)
    assert [c.name for c in unasked] == ["goal, match, team", "bank, profit, shares", "album, band, song"]
    assert all(c.answers == [] and c.answer_source == "none" for c in unasked)


def test_a_cluster_whose_answers_all_differ_is_never_named_by_spelling():
    """Eight members, eight answers: the alphabetically first ("abolishment") used to name the cluster."""
    answers = ["zebra", "abolishment", "budget", "adele", "money", "shares", "kenya", "film"]
    groups = answer_groups(answers)
    assert agreed_answer(groups) is None
    assert [answer for answer, _ in groups] == answers, "all distinct, kept in centroid order"
    texts = [f"article {i} about the budget" for i in range(8)]
    engine = CannedAnswers(answers, about={"article": "business"}, texts=texts)
    clusters = name_clusters(
        engine, texts, blobs(1, per_centre=8), np.zeros(8, dtype=int), "What is the topic?"
    )
    assert clusters[0].name == "business · article, budget" and clusters[0].answer_source == "cluster"
    assert [len(call) for call in engine.calls] == [8, 1], "the members, then one cluster question"


def test_each_answer_is_a_step_of_the_callers_job_and_its_total_stays():
    answers = ["Sport.", "The football", "", "Business", "business.", "Economy", "", " ", "\n"]
    engine = CannedAnswers(answers, about={"goal": "Sports", "album": ""})
    steps: list[int] = []
    name_clusters(
        engine, TOY_TEXTS, blobs(3, per_centre=3), np.repeat(np.arange(3), 3), "Q?", progress=steps.append
    )
    assert sum(steps) == 9 + 2, "nine members and two cluster questions"
    with tqdm(total=20, disable=True) as bar:
        name_clusters(
            CannedAnswers(answers, about={"goal": "Sports", "album": ""}), TOY_TEXTS,
            blobs(3, per_centre=3), np.repeat(np.arange(3), 3), "Q?", progress=bar,
        )  # fmt: skip
    assert bar.total == 20, "naming never moves the caller's total (the ETA depends on it)"


def test_agreement_needs_several_members_a_share_and_no_tie():
    assert (
        agreed_answer(answer_groups(["Sports", "sport", "sports.", "film", "music", "tv", "art", "war"]))
        == "sport"
    ), "plural and singular agree: three votes for the singular"
    assert agreed_answer(answer_groups(["Wales", "wales", "film"])) == "wales", "nobody wrote 'wale'"
    assert agreed_answer(answer_groups(["sport", "sport", "film", "film", "art"])) is None, (
        "a tie is no agreement"
    )
    assert agreed_answer(answer_groups(["sport", "film", "art"])) is None, "one member is not several"
    many = ["sport", "sport"] + [f"answer {i}" for i in range(8)]
    assert agreed_answer(answer_groups(many)) is None, f"2 of 10 is under {MIN_AGREEING_SHARE:.0%}"
    assert answer_groups(["football match", "Football", "football", "a film"]) == [
        ("football", 3),
        ("film", 1),
    ]
    assert agreed_answer(answer_groups([NO_ANSWER, NO_ANSWER, "sport"])) is None


def test_cluster_prompt_holds_central_members_cut_short_and_the_words():
    prompt = cluster_prompt(["one " * 100, "two words"], ["bank", "profit"])
    lines = prompt.splitlines()
    assert lines[0].startswith("1. one") and len(lines[0].split()) == 41 and lines[1] == "2. two words"
    assert lines[-1] == "Key words: bank, profit"


def test_names_are_deterministic():
    answers = ["sport", "football", "football", "money", "money", "bank", "music", "art", "art"]
    first = [c.to_dict() for c in name_toy(CannedAnswers(answers))]
    assert first == [c.to_dict() for c in name_toy(CannedAnswers(answers))]
    # The words do not depend on the order of the members within a cluster.
    reordered = [list(reversed(group)) for group in TOY.values()]
    assert distinctive_words(reordered) == distinctive_words(list(TOY.values()))


class BlobEngine:
    """Embeds the toy texts as three well-separated blobs, in order: cluster_corpus without a model."""

    dim, model_name, fingerprint = 16, "blobs", "none"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed_many(self, texts: list[str], instructions: list[str], *, show_progress: object = False) -> dict:
        self.calls.append(list(instructions))
        show_progress.update(len(texts) * len(instructions))  # type: ignore[attr-defined]  # the job's bar
        return {q: blobs(3, per_centre=3)[: len(texts)] for q in instructions}


def test_cluster_corpus_logs_and_does_not_print(caplog, capsys):
    corpus = LabelledCorpus("toy", TOY_TEXTS, [label for label in TOY for _ in TOY[label]])
    with caplog.at_level(logging.INFO, logger="inbedder_integrations.clustering"):
        report = cluster_corpus(
            BlobEngine(), corpus, ["What is the topic?"], k=3, name=False, show_progress=True
        )
    assert capsys.readouterr().out == "", "the library logs; only the CLI and recipes print"
    assert "clustering under 'What is the topic?'" in caplog.text
    (result,) = report.results
    assert result.metrics["v_measure"] == pytest.approx(1.0)
    names = {cluster.name for cluster in result.clusters}
    assert names == {"goal, match, team", "bank, profit, shares", "album, band, song"}


def test_cluster_corpus_embeds_every_instruction_in_one_pass_under_one_bar(capsys):
    engine = BlobEngine()
    corpus = LabelledCorpus("toy", TOY_TEXTS)
    given = {"Given?": blobs(3, per_centre=3)}
    report = cluster_corpus(
        engine, corpus, ["A?", "Given?", "B?"], k=3, name=False, embeddings=given, show_progress=True
    )
    assert engine.calls == [["A?", "B?"]], "one embed_many for what was not given"
    assert [result.instruction for result in report.results] == ["A?", "Given?", "B?"]
    bars = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if "cluster" in line]
    assert bars and all(line.startswith("cluster") for line in bars), "one bar, the job's"
    assert f"{2 * len(TOY_TEXTS)}/{2 * len(TOY_TEXTS)}" in bars[-1]


def test_cluster_corpus_reads_the_cache_on_a_second_run(tmp_path, monkeypatch):
    """The CLI's engine caches: a second run of the same corpus runs no forward pass, and the
    job's bar still counts the vectors it read."""
    cached = InBedder.from_pretrained("default", dtype="float32", cache=tmp_path / "cache.sqlite")
    texts = [f"{text} (cached run)" for text in TOY_TEXTS]
    first = cluster_corpus(cached, texts, [TOPIC, "How does the writer feel?"], k=3, name=False)
    monkeypatch.setattr(cached, "_compute", lambda *args: pytest.fail("a cached vector was computed"))
    second = cluster_corpus(cached, texts, [TOPIC, "How does the writer feel?"], k=3, name=False)
    assert [r.assignments for r in second.results] == [r.assignments for r in first.results]


def test_instructions_default_only_for_bbc():
    assert instructions_for("bbc", None) == list(BBC_INSTRUCTIONS)
    assert instructions_for("polarity", ["How does the writer feel?"]) == ["How does the writer feel?"]
    with pytest.raises(ValueError, match="only bbc and messages have default ones"):
        instructions_for("polarity", [])


def test_builtin_corpora():
    bbc = load_corpus("bbc", limit=10)
    assert len(bbc.texts) == 10 and bbc.labels is not None
    assert sorted(set(bbc.labels)) == ["business", "entertainment", "politics", "sports", "tech"]
    assert load_corpus("bbc", limit=10).texts == bbc.texts, "a fixed sample"
    polarity = load_corpus("polarity")
    assert len(polarity.texts) == 200 and set(polarity.labels or []) == {"pos", "neg"}
    background = load_corpus("lee_background", limit=30)
    assert len(background.texts) == 30 and background.labels is None
    documents = bbc.as_documents()
    assert documents[0]["id"] == "bbc-00000" and documents[0]["metadata"] == {"label": bbc.labels[0]}
    with pytest.raises(FileNotFoundError, match="not one of"):
        load_corpus("no-such-corpus")


def test_own_folders_and_jsonl_carry_labels(tmp_path):
    for label in ("cats", "dogs"):
        (tmp_path / "pets" / label).mkdir(parents=True)
        for n in range(2):
            (tmp_path / "pets" / label / f"{n}.txt").write_text(f"{label} text {n}", encoding="utf-8")
    pets = load_corpus(tmp_path / "pets")
    assert sorted(zip(pets.labels or [], pets.texts, strict=True))[0] == ("cats", "cats text 0")
    rows = [{"text": "one", "label": "x"}, {"text": "two", "metadata": {"label": "y"}}]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    assert load_corpus(path).labels == ["x", "y"]
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "a.txt").write_text("no folder, no label", encoding="utf-8")
    assert load_corpus(tmp_path / "flat").labels is None


def test_cluster_corpus_rejects_bad_input(engine_bf16):
    corpus = LabelledCorpus("tiny", ["a", "b", "c", "d"], ["x", "x", "y"])
    with pytest.raises(ValueError, match="3 labels for 4 texts"):
        cluster_corpus(engine_bf16, corpus, [TOPIC], k=2)
    with pytest.raises(TypeError, match="non-empty list"):
        cluster_corpus(engine_bf16, ["a", "b", "c"], TOPIC)
    with pytest.raises(ValueError, match="has shape"):
        cluster_corpus(engine_bf16, ["a", "b", "c"], [TOPIC], k=2, embeddings={TOPIC: np.zeros((2, 576))})


@pytest.fixture(scope="module")
def bbc_report(engine):
    """100 BBC articles (20 per topic), k = 5, under the topic instruction and an unrelated one.

    Each article is cut to its first 150 characters (the headline and the opening words):
    the topic is already there, and whole articles (~500 tokens) cost 9x the time here.
    """
    bbc = load_corpus("bbc", limit=100)
    openings = LabelledCorpus("bbc-openings", [text[:150] for text in bbc.texts], bbc.labels)
    return cluster_corpus(engine, openings, [TOPIC, FEELING], k=5)


@pytest.mark.slow
def test_the_topic_instruction_recovers_the_topics(bbc_report):
    topic, feeling = bbc_report.results
    assert topic.metrics["v_measure"] > feeling.metrics["v_measure"] + 0.15, bbc_report.metrics_table()
    assert topic.metrics["v_measure"] > 0.5, bbc_report.metrics_table()
    # Clusters are named from the model's answers and their distinctive words:
    # the names differ between clusters, and the words set each one apart.
    names = [cluster.name for cluster in topic.clusters]
    assert len(set(names)) == 5, names
    for cluster in topic.clusters:
        answer, _, words = cluster.name.partition(NAME_SEPARATOR)
        assert cluster.answers and cluster.answer_source in {"agreement", "cluster"}, cluster
        if cluster.answer_source == "agreement":  # else the model's answer about the whole cluster
            assert answer == cluster.answers[0][0] and cluster.answers[0][1] >= 2, cluster
        assert len(cluster.words) == 5 and words and set(words.split(", ")) <= set(cluster.words), cluster
    assert sum(size for size in (c.size for c in topic.clusters)) == 100
    for cluster in topic.clusters:
        assert len(cluster.examples) == 3 and all(e in bbc_report.texts for e in cluster.examples)


@pytest.mark.slow
def test_report_files_hold_every_instruction(bbc_report, tmp_path):
    paths = write_report(bbc_report, tmp_path / "report")
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 1, "the picture is embedded, not linked"
    assert FEELING in page
    assert "What is the topic of this news?" in page
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert [r["instruction"] for r in saved["results"]] == [TOPIC, FEELING]
    assert len(saved["results"][0]["coordinates"]) == 100
    markdown = paths["markdown"].read_text(encoding="utf-8")
    assert "| What is the topic of this news? | 5 |" in markdown
    for cluster in bbc_report.results[0].clusters:
        assert f"**{cluster.name}**" in markdown and ", ".join(cluster.words) in markdown
        assert json.dumps(cluster.name)[1:-1] in page or cluster.name in page
    assert saved["results"][0]["clusters"][0]["words"] == bbc_report.results[0].clusters[0].words


@pytest.mark.slow
def test_cluster_cli_on_a_folder(tmp_path):
    folder = tmp_path / "notes"
    texts = {
        "sport": ["The striker scored twice in the final.", "The team won the league title."],
        "money": ["The bank raised interest rates again.", "Shares fell after weak profits."],
    }
    for label, items in texts.items():
        (folder / label).mkdir(parents=True)
        for n, text in enumerate(items):
            (folder / label / f"{n}.txt").write_text(text, encoding="utf-8")
    result = run_cli(
        "cluster", str(folder), "--instruction", "What is the topic?",
        "--instruction", "How does the writer feel?", "-k", "2",
        "--output", str(tmp_path / "out"), "--method", "agglomerative",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "| What is the topic? | 2 |" in result.stdout
    assert (tmp_path / "out" / "clusters.html").is_file()
    failed = run_cli("cluster", "bbc", "-k", "1", "--limit", "10", "--output", str(tmp_path / "bad"))
    assert failed.returncode != 0 and "k must be an int from 2" in failed.stderr


@pytest.mark.slow
def test_clustering_recipe_writes_one_report_per_method(tmp_path):
    recipe = load_recipe("clustering")
    feeling, topic = "How does the writer feel?", "What is the topic of the text?"
    reports = recipe.run("polarity", [feeling, topic], limit=30, k=2, output=tmp_path)
    assert set(reports) == {"kmeans", "agglomerative"}
    for method, report in reports.items():
        assert report.method == method and [r.instruction for r in report.results] == [feeling, topic]
        assert all(sum(c.size for c in r.clusters) == 30 for r in report.results)
        assert {"v_measure", "nmi", "ari"} <= set(report.results[0].metrics)
        page = (tmp_path / method / "clusters.html").read_text(encoding="utf-8")
        assert feeling in page and topic in page
    coordinates = [[r.coordinates for r in report.results] for report in reports.values()]
    assert coordinates[0] == coordinates[1], "both methods cluster the same vectors"


def test_distinctive_words_are_whole_words():
    """sklearn's default pattern cut "don't" into "don" and "we'll" into "ll"; those named clusters."""
    texts_by_class = [
        ["I don't want the parcel, we'll send it back.", "Don't charge me, we'll cancel the parcel."],
        ["The customer's invoice is wrong.", "Fix the invoice on the customer\u2019s account."],
    ]
    words = distinctive_words(texts_by_class)
    flat = {word for row in words for word in row}
    assert not flat & {"don", "ll", "t", "s"}, words
    assert "parcel" in words[0] and "customer" in words[1] and "invoice" in words[1], words
