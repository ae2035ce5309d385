"""The MTEB wrapper: MTEB's own evaluation loop, offline, on tasks built from the package's
hand-written messages (75 messages, 5 emotions x 5 intents), with the real default model."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

mteb = pytest.importorskip("mteb", reason="the 'mteb' extra is part of the test install")

from datasets import Dataset, DatasetDict  # noqa: E402
from mteb.abstasks.clustering import AbsTaskClustering  # noqa: E402
from mteb.abstasks.task_metadata import TaskMetadata  # noqa: E402

from inbedder_integrations import InBedder  # noqa: E402
from inbedder_integrations.errors import InvalidArgumentError, InvalidTypeError  # noqa: E402
from inbedder_integrations.evaluation.loaders import load_messages  # noqa: E402
from inbedder_integrations.mteb import (  # noqa: E402
    FALLBACK_QUESTION,
    TYPE_QUESTIONS,
    InBedderMTEB,
    task_instruction,
)

FEEL = "How does the writer feel?"
WANT = "What does the customer want?"


def _metadata(name: str, task_type: str = "Clustering", prompt: Any = None) -> TaskMetadata:
    return TaskMetadata(
        name=name,
        description="Hand-written customer messages (inbedder_integrations/assets/eval-messages.json).",
        reference="https://example.org/inbedder-messages",
        dataset={"path": "local/eval-messages", "revision": "1"},
        type=task_type,  # type: ignore[arg-type]
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score="v_measure",
        date=("2026-01-01", "2026-12-01"),
        domains=["Written"],
        task_subtypes=[],
        license="cc-by-4.0",
        annotations_creators="expert-annotated",
        dialect=[],
        sample_creation="created",
        bibtex_citation="",
        prompt=prompt,
    )


def _clustering_task(name: str, label: str, prompt: str) -> AbsTaskClustering:
    """An MTEB clustering task over all 75 messages, labelled by ``label``, whose own prompt
    (``TaskMetadata.prompt``) is ``prompt``: MTEB loads nothing from the hub."""

    class MessagesClustering(AbsTaskClustering):
        metadata = _metadata(name, prompt=prompt)
        max_fraction_of_documents_to_embed = None  # embed all 75
        max_documents_per_cluster = 75
        n_clusters = 3  # k-means restarts MTEB averages over

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            rows = load_messages()
            split = Dataset.from_dict(
                {"sentences": [r["text"] for r in rows], "labels": [r[label] for r in rows]}
            )
            self.dataset = DatasetDict({"test": split})  # pyright: ignore[reportAttributeAccessIssue]  # as mteb.mocks do
            self.data_loaded = True

    return MessagesClustering()


def _v_measure(model: InBedderMTEB, task: AbsTaskClustering) -> float:
    result = mteb.evaluate(model, task, cache=None, co2_tracker=False, show_progress_bar=False)
    (task_result,) = result.task_results
    assert result.model_revision == model.engine.fingerprint
    return float(task_result.scores["test"][0]["v_measure"])


@pytest.mark.slow
def test_mteb_clustering_follows_the_task_question(engine: InBedder):
    """MTEB's evaluation loop on two tasks over the same texts: the emotion task (whose own prompt
    asks how the writer feels) and the intent task (asks what the customer wants).  Each question
    must beat the other's on its own labels: the wrapper gets each task's question to the model,
    and a user's table overrides it."""
    emotion = _clustering_task("MessagesEmotionClustering", "emotion", FEEL)
    intent = _clustering_task("MessagesIntentClustering", "intent", WANT)
    own = InBedderMTEB(engine=engine)  # questions from the tasks' metadata
    swapped = InBedderMTEB(
        engine=engine,
        instructions={"MessagesEmotionClustering": WANT, "MessagesIntentClustering": {"document": FEEL}},
    )
    scores = {
        ("own", "emotion"): _v_measure(own, emotion),
        ("own", "intent"): _v_measure(own, intent),
        ("swapped", "emotion"): _v_measure(swapped, emotion),
        ("swapped", "intent"): _v_measure(swapped, intent),
    }
    # 5 balanced classes: a clustering that ignores them scores about 0.1 by chance at n=75.
    assert scores["own", "emotion"] > 0.3, scores
    assert scores["own", "intent"] > 0.3, scores
    assert scores["own", "emotion"] > scores["swapped", "emotion"] + 0.1, scores
    assert scores["own", "intent"] > scores["swapped", "intent"] + 0.1, scores


def test_model_meta_reports_the_fingerprint_as_revision(engine: InBedder):
    model = InBedderMTEB(engine=engine)
    meta = model.mteb_model_meta
    assert meta is not None
    assert meta.revision == engine.fingerprint
    assert meta.embed_dim == engine.dim
    assert meta.name == "inbedder/SmolLM2-135M-Instruct"
    assert isinstance(model, mteb.EncoderProtocol)


def test_encode_asks_each_side_and_each_query_its_question(engine: InBedder):
    """The per-side table reaches the engine, and FollowIR-style per-query instructions are
    either kept in the query text (MTEB's joined ``text``) or asked as the query's question."""
    task = _metadata("MessagesRetrieval", "InstructionRetrieval")
    texts = ["My parcel never came and I am furious.", "Thanks, the blender works perfectly!"]
    batch = {
        "text": [f"{t} Find angry messages." for t in texts],
        "query": texts,
        "instruction": [FEEL, WANT],
    }
    table = {"MessagesRetrieval": {"query": FEEL, "document": WANT}}
    as_text = InBedderMTEB(engine=engine, instructions=table)
    as_question = InBedderMTEB(engine=engine, instructions=table, per_query_instructions="question")
    kwargs = {"task_metadata": task, "hf_split": "test", "hf_subset": "default"}
    got_text = as_text.encode([batch], prompt_type=mteb.types.PromptType.query, **kwargs)  # type: ignore[arg-type]
    got_question = as_question.encode([batch], prompt_type=mteb.types.PromptType.query, **kwargs)  # type: ignore[arg-type]
    got_docs = as_text.encode([{"text": texts}], prompt_type=mteb.types.PromptType.document, **kwargs)  # type: ignore[arg-type]
    assert got_text == pytest.approx(engine.embed(batch["text"], FEEL), abs=1e-5)
    assert got_question[0] == pytest.approx(engine.embed(texts[:1], FEEL)[0], abs=1e-5)
    assert got_question[1] == pytest.approx(engine.embed(texts[1:], WANT)[0], abs=1e-5)
    assert got_docs == pytest.approx(engine.embed(texts, WANT), abs=1e-5)


def test_task_instruction_order():
    """The caller's table (by name, then type) beats the task's prompt, which beats the type's question."""
    plain = _metadata("SomeTask", "Clustering")
    prompted = _metadata("SomeTask", "Retrieval", prompt={"query": "Which topic is asked about?"})
    assert task_instruction(plain, None) == TYPE_QUESTIONS["Clustering"]
    assert task_instruction(prompted, "query") == "Which topic is asked about?"
    assert task_instruction(prompted, "document") == "Which topic is asked about?"  # same question both sides
    assert task_instruction(prompted, "document", use_task_prompts=False) == TYPE_QUESTIONS["Retrieval"]
    assert task_instruction(prompted, "query", {"Retrieval": FEEL}) == FEEL
    assert task_instruction(prompted, "query", {"Retrieval": FEEL, "SomeTask": WANT}) == WANT
    assert task_instruction(_metadata("X", "Any2AnyRetrieval"), None) == FALLBACK_QUESTION


@pytest.mark.parametrize(
    ("instructions", "error", "says"),
    [
        ({"SomeTask": ""}, InvalidArgumentError, "instructions['SomeTask']"),
        ({"SomeTask": {"passage": FEEL}}, InvalidArgumentError, "unknown side(s) ['passage']"),
        ({"SomeTask": 3}, InvalidTypeError, "instructions['SomeTask'] must be a question"),
        (["SomeTask"], InvalidTypeError, "instructions must be a mapping"),
    ],
)
def test_bad_instruction_tables_are_refused(engine: InBedder, instructions: Any, error: type, says: str):
    with pytest.raises(error, match=None) as caught:
        InBedderMTEB(engine=engine, instructions=instructions)
    assert says in str(caught.value)


def test_missing_mteb_gives_an_actionable_error():
    code = "import sys; sys.modules['mteb'] = None; import inbedder_integrations.mteb"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "pip install 'inbedder-integrations[mteb]'" in result.stderr
