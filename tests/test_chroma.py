"""Chroma: the embedding function, open_collection's checks, and one corpus under many
instructions, on a real embedded Chroma and a real `chroma run` server."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from chromadb.utils.embedding_functions import known_embedding_functions

from inbedder_integrations.chroma import InBedderEmbeddingFunction, InstructionMismatchError, open_collection
from inbedder_integrations.corpus import InstructedCorpus, collection_name
from tests.conftest import FLOAT32

TOPIC = "What is the topic of this text?"
FEELING = "How does the writer feel?"
DOCS = [
    "The striker scored twice and the home side won the cup final.",
    "The central bank raised interest rates to fight inflation.",
    "I am heartbroken: my favourite team was relegated today.",
    "Investors cheered as the shares doubled in a single day.",
    "The orchestra played Beethoven to a packed concert hall.",
]


def test_embedding_function_protocol(engine):
    function = InBedderEmbeddingFunction(TOPIC, FEELING, model_kwargs=FLOAT32)
    assert known_embedding_functions["inbedder"] is InBedderEmbeddingFunction
    assert function.name() == "inbedder" and function.default_space() == "cosine"
    np.testing.assert_allclose(np.array(function(DOCS[:2])), engine.embed(DOCS[:2], TOPIC), atol=1e-6)
    np.testing.assert_allclose(
        np.array(function.embed_query(DOCS[:1])), engine.embed(DOCS[:1], FEELING), atol=1e-6
    )
    config = function.get_config()
    assert config["instruction"] == TOPIC and config["query_instruction"] == FEELING
    assert config["fingerprint"] == engine.fingerprint and config["dim"] == 576
    rebuilt = InBedderEmbeddingFunction.build_from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.embedder.engine._loaded is function.embedder.engine._loaded, (
        "rebuilding must not reload the model"
    )
    with pytest.raises(ValueError, match="lacks"):
        InBedderEmbeddingFunction.validate_config({"instruction": TOPIC})
    with pytest.raises(InstructionMismatchError, match="fingerprint"):
        InBedderEmbeddingFunction.build_from_config({**config, "fingerprint": "another-model@0000"})
    with pytest.raises(InstructionMismatchError, match="instruction"):
        function.validate_config_update(config, {**config, "instruction": FEELING})


def test_open_collection_records_and_enforces_its_instruction(chroma_client, engine):
    created = open_collection(chroma_client, "news-topic", instruction=TOPIC, model_kwargs=FLOAT32)
    created.add(ids=[str(i) for i in range(len(DOCS))], documents=DOCS)
    stored = created.configuration_json
    assert stored["hnsw"]["space"] == "cosine"
    assert stored["embedding_function"]["config"]["fingerprint"] == engine.fingerprint

    with pytest.raises(InstructionMismatchError) as error:
        open_collection(chroma_client, "news-topic", instruction=FEELING, model_kwargs=FLOAT32)
    assert TOPIC in str(error.value) and FEELING in str(error.value)
    with pytest.raises(InstructionMismatchError, match="query_instruction"):
        open_collection(chroma_client, "news-topic", instruction=TOPIC, query_instruction=FEELING,
                        model_kwargs=FLOAT32)  # fmt: skip
    with pytest.raises(InstructionMismatchError, match="fingerprint"):
        open_collection(chroma_client, "news-topic", instruction=TOPIC, model_kwargs={**FLOAT32, "layer": 12})

    reopened = open_collection(chroma_client, "news-topic", instruction=None)
    hits = reopened.query(query_texts=[DOCS[1]], n_results=1)
    assert hits["ids"][0] == ["1"]
    assert reopened.count() == len(DOCS)


def test_open_collection_errors(chroma_client, tiny_masked_model_dir):
    with pytest.raises(LookupError, match="no collection named"):
        open_collection(chroma_client, "absent", instruction=TOPIC, create=False)
    with pytest.raises(ValueError, match="an instruction is needed"):
        open_collection(chroma_client, "absent", instruction=None)
    chroma_client.create_collection("foreign", embedding_function=None)
    with pytest.raises(InstructionMismatchError, match="embedding function"):
        open_collection(chroma_client, "foreign", instruction=TOPIC)
    open_collection(chroma_client, "small", instruction=TOPIC, model=str(tiny_masked_model_dir),
                    model_kwargs=FLOAT32)  # fmt: skip
    with pytest.raises(InstructionMismatchError, match="dim=32"):
        open_collection(chroma_client, "small", instruction=TOPIC, model_kwargs=FLOAT32)


def test_collection_names_are_stable_safe_and_distinct():
    name = collection_name("bbc", TOPIC)
    assert name == collection_name("bbc", TOPIC)
    assert name != collection_name("bbc", FEELING) != collection_name("bbc", "What is the topic of this text")
    assert name.startswith("bbc--what-is-the-topic-of-this-text-")
    assert collection_name("bbc", "¿Qué? 🙂")[-1].isalnum()
    with pytest.raises(ValueError, match="corpus name"):
        collection_name("bad name!", TOPIC)


def test_corpus_under_two_instructions(chroma_client, engine):
    corpus = InstructedCorpus(chroma_client, "news", model_kwargs=FLOAT32)
    assert corpus.index(DOCS, [TOPIC, FEELING]) == {TOPIC: len(DOCS), FEELING: len(DOCS)}
    stored = corpus.collection(FEELING).get()
    order = stored["ids"][::-1]
    text_of = dict(zip(stored["ids"], stored["documents"], strict=True))
    expected = engine.embed([text_of[i] for i in order], FEELING)
    np.testing.assert_allclose(corpus.embeddings(FEELING, order), expected, atol=1e-6)
    with pytest.raises(LookupError, match="not indexed"):
        corpus.embeddings(FEELING, ["no-such-id"])
    assert corpus.instructions() == sorted([TOPIC, FEELING])
    assert corpus.index(DOCS, [TOPIC, FEELING]) == {TOPIC: 0, FEELING: 0}, "a rerun writes nothing"
    for instruction in (TOPIC, FEELING):
        assert corpus.collection(instruction).count() == len(DOCS)
        assert corpus.search(DOCS[2], instruction, k=1)[0].text == DOCS[2]
    with pytest.raises(LookupError, match="has not been indexed under"):
        corpus.search("x", "Which country?")
    store = corpus.langchain(FEELING)
    assert store.similarity_search(DOCS[3], k=1)[0].page_content == DOCS[3]
    index = corpus.llama_index(TOPIC)
    assert index.as_retriever(similarity_top_k=1).retrieve(DOCS[4])[0].node.get_content() == DOCS[4]


def test_interrupted_ingestion_resumes_without_duplicates(chroma_client):
    corpus = InstructedCorpus(chroma_client, "resume", model_kwargs=FLOAT32)
    assert corpus.index(DOCS[:2], [TOPIC], batch_size=1) == {TOPIC: 2}  # "stopped partway"
    assert corpus.index([*DOCS, DOCS[0]], [TOPIC], batch_size=2) == {TOPIC: len(DOCS) - 2}
    stored = corpus.collection(TOPIC).get()
    assert sorted(stored["documents"]) == sorted(DOCS)
    assert len(set(stored["ids"])) == len(DOCS)
    # A changed text under a given id is re-embedded; the old vector is replaced.
    edited = [{"text": "first version", "id": "a"}]
    corpus.index(edited, [TOPIC])
    assert corpus.index([{"text": "second version", "id": "a"}], [TOPIC]) == {TOPIC: 1}
    assert corpus.collection(TOPIC).get(ids=["a"])["documents"] == ["second version"]


def test_bad_corpus_fails_whole_and_writes_nothing(chroma_client):
    corpus = InstructedCorpus(chroma_client, "bad", model_kwargs=FLOAT32)
    with pytest.raises(TypeError, match=r"documents\[2\]"):
        corpus.index(["fine", "also fine", None], [TOPIC])
    with pytest.raises(ValueError, match=r"documents\[1\] reuses id 'x'"):
        corpus.index([{"text": "a", "id": "x"}, {"text": "b", "id": "x"}], [TOPIC])
    with pytest.raises(ValueError, match=r"instructions\[1\]"):
        corpus.index(["fine"], [TOPIC, ""])
    assert corpus.instructions() == []


@pytest.mark.slow
def test_cli_index_search_collections(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, text in enumerate(DOCS):
        (folder / f"{i}.txt").write_text(text, encoding="utf-8")
    store = str(tmp_path / "store")

    def cli(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "inbedder_integrations.cli", *args, "--path", store],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    out = cli("index", str(folder), "--name", "cli", "--instruction", TOPIC, "--instruction", FEELING,
              "--dtype", "float32")  # fmt: skip
    assert out.count(f"{len(DOCS)} written") == 2
    out = cli("index", str(folder), "--name", "cli", "--instruction", TOPIC, "--dtype", "float32")
    assert "0 written" in out
    out = cli("search", "cli", DOCS[1], "--instruction", TOPIC, "-k", "2", "--dtype", "float32")
    assert out.splitlines()[0].split()[2] == "1.txt"
    out = cli("collections")
    assert out.count("corpus=cli") == 2 and f"count={len(DOCS)}" in out


def stored_vector(collection, id_: str) -> np.ndarray:
    return np.asarray(collection.get(ids=[id_], include=["embeddings"])["embeddings"][0], dtype=np.float32)


def test_chromas_own_apis_without_a_function_rebuild_the_persisted_one(chroma_client, engine):
    """The safe way through Chroma's own API: give no function, and Chroma rebuilds the
    collection's own from its persisted config, whichever instruction it was built with."""
    open_collection(chroma_client, "own-api", instruction=TOPIC, model_kwargs=FLOAT32)
    for index, opened in enumerate(
        (chroma_client.get_collection("own-api"), chroma_client.get_or_create_collection("own-api"))
    ):
        opened.add(ids=[f"d{index}"], documents=[DOCS[index]])
        np.testing.assert_allclose(
            stored_vector(opened, f"d{index}"), engine.embed([DOCS[index]], TOPIC)[0], atol=1e-5
        )


def test_chroma_calls_no_hook_when_a_function_is_passed_so_open_collection_is_the_guard(
    chroma_client, engine
):
    """A canary of what docs/chroma.md says: Chroma 1.x compares only a passed function's name,
    and persists a modified one before asking it (``validate_config_update`` raises after the
    change). If Chroma starts consulting the function, this fails: wire the hook, fix the docs."""
    other = InBedderEmbeddingFunction(FEELING, model_kwargs=FLOAT32)
    open_collection(chroma_client, "passed-function", instruction=TOPIC, model_kwargs=FLOAT32)
    wrong = chroma_client.get_collection("passed-function", embedding_function=other)  # type: ignore[arg-type]
    wrong.add(ids=["x"], documents=[DOCS[0]])
    assert float(stored_vector(wrong, "x") @ engine.embed([DOCS[0]], FEELING)[0]) > 0.9999, "the gap"
    with pytest.raises(InstructionMismatchError, match="instruction"):
        open_collection(chroma_client, "passed-function", instruction=FEELING, model_kwargs=FLOAT32)
    modified = open_collection(chroma_client, "modified-function", instruction=TOPIC, model_kwargs=FLOAT32)
    with pytest.raises(InstructionMismatchError):
        modified.modify(configuration={"embedding_function": other})  # type: ignore[typeddict-item]
    persisted = chroma_client.get_collection("modified-function").configuration_json["embedding_function"]
    assert persisted["config"]["instruction"] == FEELING, "Chroma persisted it before the check ran"


QUESTION_TOPIC = "Which topic is this question asking about?"
QUESTION_OTHER = "Which city is this question about, and what is its weather like?"


def test_a_corpus_asks_queries_its_own_question(chroma_client, engine):
    corpus = InstructedCorpus(chroma_client, "asked", model_kwargs=FLOAT32)
    corpus.index(DOCS, [TOPIC, FEELING], query_instructions={TOPIC: QUESTION_OTHER})
    query = "football results"
    hit = corpus.search(query, TOPIC, k=1)[0]
    stored = corpus.embeddings(TOPIC, [hit.id])[0]
    asked = float(stored @ engine.embed([query], QUESTION_OTHER)[0])
    as_document = float(stored @ engine.embed([query], TOPIC)[0])
    assert abs(hit.score - asked) < 1e-5 < abs(hit.score - as_document), (hit.score, asked, as_document)
    assert corpus.langchain(TOPIC).embeddings.query_instruction == QUESTION_OTHER  # type: ignore[union-attr]
    assert corpus.llama_index(TOPIC)._embed_model.query_instruction == QUESTION_OTHER  # type: ignore[attr-defined]
    assert corpus.langchain(FEELING).embeddings.query_instruction == FEELING  # type: ignore[union-attr]
    assert corpus.index(DOCS, [TOPIC]) == {TOPIC: 0}, "unmapped: the persisted one is kept"
    with pytest.raises(InstructionMismatchError, match="query_instruction"):
        corpus.index(DOCS, [TOPIC], query_instructions={TOPIC: "Who is named?"})
    with pytest.raises(ValueError, match="not one of the instructions"):
        corpus.index(DOCS, [TOPIC], query_instructions={FEELING: "Why?"})


def test_cli_index_takes_a_query_instruction_per_instruction(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for index, text in enumerate(DOCS):
        (docs / f"{index}.txt").write_text(text, encoding="utf-8")
    store = str(tmp_path / "store")
    base = [sys.executable, "-m", "inbedder_integrations.cli", "index", str(docs), "--name", "cli-asked",
            "--path", store, "--dtype", "float32", "--no-cache", "--instruction", TOPIC]  # fmt: skip
    refused = subprocess.run([*base, "--instruction", FEELING, "--query-instruction", QUESTION_TOPIC],
                             capture_output=True, text=True)  # fmt: skip
    assert refused.returncode == 1 and "1 --query-instruction for 2 --instruction" in refused.stderr
    done = subprocess.run([*base, "--query-instruction", QUESTION_TOPIC], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "store"))
    collection = client.get_collection(collection_name("cli-asked", TOPIC))
    assert (
        collection.configuration_json["embedding_function"]["config"]["query_instruction"] == QUESTION_TOPIC
    )
