"""Adapters pointed at a real `inbedder serve` (``from_server``): documents under the served
name, queries under ``name:query``, equal to the in-process adapters' vectors (fp32, 1e-5),
with LangChain's standard embedding suites run in remote mode."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests

from inbedder_integrations import InBedder
from inbedder_integrations.errors import InBedderError, MissingError

pytest.importorskip("fastapi", reason="the 'serve' extra is part of the test install")
from inbedder_integrations.chroma import InBedderEmbeddingFunction, InstructionMismatchError, open_collection
from inbedder_integrations.corpus import InstructedCorpus
from inbedder_integrations.langchain import InBedderEmbeddings
from inbedder_integrations.llama_index import InBedderEmbedding
from inbedder_integrations.serving import ServeConfig, ServedInstruction, serve_in_background
from tests.conftest import FLOAT32, free_port

TOPIC = "What is the topic of this text?"
TOPIC_QUERY = "Which topic is this question asking about?"
MOOD = "How does the writer feel?"
KEY = "remote-key-0123456789"
DOCS = ["The striker scored twice in the final.", "The bank raised interest rates.", "I love it!"]
QUESTION = "Which match did the striker win?"
TOLERANCE = 1e-5


def config(port: int = 0) -> ServeConfig:
    served = (ServedInstruction("topic", TOPIC, TOPIC_QUERY), ServedInstruction("mood", MOOD))
    return ServeConfig(served, port=port, api_key=KEY, cache=False)


@pytest.fixture(scope="module")
def server_engine(engine: InBedder) -> InBedder:
    return InBedder.from_pretrained("default", dtype="float32", cache=False)


_SERVER: dict[str, str] = {}


@pytest.fixture(scope="module")
def server(server_engine: InBedder) -> Iterator[str]:
    with serve_in_background(config(), server_engine) as running:
        _SERVER["url"] = running.url
        yield running.url


def local(**fields: object) -> InBedderEmbeddings:
    return InBedderEmbeddings(
        instruction=TOPIC, query_instruction=TOPIC_QUERY, model_kwargs=FLOAT32, **fields
    )


def close(a: object, b: object) -> bool:
    return bool(np.abs(np.asarray(a, dtype=np.float32) - np.asarray(b, dtype=np.float32)).max() <= TOLERANCE)


def test_langchain_from_server_sends_the_query_instruction(server: str) -> None:
    remote, here = InBedderEmbeddings.from_server(f"{server}/v1", "topic", api_key=KEY), local()
    assert (remote.instruction, remote.query_instruction) == (TOPIC, TOPIC_QUERY), "read off the server"
    assert close(remote.embed_documents(DOCS), here.embed_documents(DOCS))
    assert close(remote.embed_query(QUESTION), here.embed_query(QUESTION))
    assert not close(remote.embed_query(QUESTION), here.embed_documents([QUESTION])[0]), "not the documents'"
    assert close(asyncio.run(remote.aembed_documents(DOCS)), here.embed_documents(DOCS))
    assert close(asyncio.run(remote.aembed_query(QUESTION)), here.embed_query(QUESTION))
    assert remote.fingerprint == here.fingerprint and remote.cache_namespace == here.cache_namespace
    many = [f"text {i} about football" for i in range(40)]  # several chunks of batch_size
    chunked = InBedderEmbeddings.from_server(server, "topic", api_key=KEY, batch_size=7)
    assert close(chunked.embed_documents(many), here.embed_documents(many))


def test_from_server_refuses_what_the_server_does_not_serve(server: str) -> None:
    with pytest.raises(MissingError, match=r"serves no 'weather'.*\['mood', 'topic'\]"):
        InBedderEmbeddings.from_server(server, "weather", api_key=KEY)
    with pytest.raises(ValueError, match="serves 'topic' with instruction="):
        InBedderEmbeddings.from_server(server, "topic", api_key=KEY, instruction=MOOD)
    with pytest.raises(InBedderError, match="401"):
        InBedderEmbeddings.from_server(server, "topic", api_key="wrong")
    with pytest.raises(ValueError, match="instruction is required"):
        InBedderEmbeddings()


def test_llama_index_from_server(server: str) -> None:
    remote = InBedderEmbedding.from_server(server, "topic", api_key=KEY)
    here = InBedderEmbedding(instruction=TOPIC, query_instruction=TOPIC_QUERY, model_kwargs=FLOAT32)
    assert close(remote.get_text_embedding_batch(DOCS), here.get_text_embedding_batch(DOCS))
    assert close(remote.get_query_embedding(QUESTION), here.get_query_embedding(QUESTION))
    assert close(asyncio.run(remote.aget_query_embedding(QUESTION)), here.get_query_embedding(QUESTION))
    assert remote.fingerprint == here.fingerprint


def test_chroma_from_server_persists_the_server_and_never_the_key(
    server: str, chroma_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INBEDDER_TEST_KEY", KEY)
    function = InBedderEmbeddingFunction.from_server(server, "topic", api_key_env_var="INBEDDER_TEST_KEY")
    collection = open_collection(chroma_client, "remote-topic", instruction=None, function=function)
    collection.add(ids=["0", "1", "2"], documents=DOCS)
    here = local()
    stored = collection.get(ids=["0", "1", "2"], include=["embeddings"])["embeddings"]
    assert close(stored, here.embed_documents(DOCS))
    persisted = collection.configuration_json["embedding_function"]["config"]
    assert persisted["server_url"] == server and persisted["query_instruction"] == TOPIC_QUERY
    assert KEY not in str(collection.configuration_json), "the key itself is never persisted"
    # Chroma rebuilds the remote function from the config only for a server this process trusts,
    # and with the key of this process's own variable, never the one the config names.
    with pytest.raises(ValueError, match="INBEDDER_TRUSTED_SERVERS"):
        chroma_client.get_collection("remote-topic").query(query_texts=[QUESTION], n_results=1)
    monkeypatch.setenv("INBEDDER_TRUSTED_SERVERS", f"http://example.invalid:9, {server}/v1")
    with pytest.raises(ValueError, match="401"):  # $INBEDDER_TEST_KEY is set, but not ours to read
        chroma_client.get_collection("remote-topic").query(query_texts=[QUESTION], n_results=1)
    monkeypatch.setenv("INBEDDER_API_KEY", KEY)
    reopened = chroma_client.get_collection("remote-topic")
    hits = reopened.query(query_texts=[QUESTION], n_results=1)
    assert hits["ids"][0] == ["0"]
    # A collection built in-process grows through the server: one fingerprint.
    open_collection(
        chroma_client, "built-here", instruction=TOPIC, query_instruction=TOPIC_QUERY, model_kwargs=FLOAT32
    )
    grown = open_collection(chroma_client, "built-here", instruction=None, function=function)
    grown.add(ids=["x"], documents=DOCS[:1])
    monkeypatch.delenv("INBEDDER_TEST_KEY")
    with pytest.raises(ValueError, match="INBEDDER_TEST_KEY is not set"):
        InBedderEmbeddingFunction.from_server(server, "topic", api_key_env_var="INBEDDER_TEST_KEY")


def test_a_server_that_restarts_is_retried(server_engine: InBedder) -> None:
    port = free_port()
    first = serve_in_background(config(port), server_engine)
    remote = InBedderEmbeddings.from_server(first.url, "mood", api_key=KEY)
    expected = remote.embed_documents(DOCS)
    first.stop()
    restarted: list[object] = []
    starter = threading.Thread(
        target=lambda: (time.sleep(1.0), restarted.append(serve_in_background(config(port), server_engine)))
    )
    starter.start()
    try:
        assert close(remote.embed_documents(DOCS), expected), "answered once the server was back"
    finally:
        starter.join(60)
        for running in restarted:
            running.stop()  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- searching through it


def test_a_corpus_searches_through_a_query_server_as_it_does_in_process(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Indexed in-process, searched with the server embedding the queries: the same hits and
    scores; the CLI's ``search --server`` prints them too.  A server without the collection's
    instruction, or with another query instruction, is refused and named."""
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "store"))
    local_corpus = InstructedCorpus(client, "news", model_kwargs=FLOAT32, cache=False)
    local_corpus.index(DOCS, [TOPIC, MOOD], query_instructions={TOPIC: TOPIC_QUERY})
    monkeypatch.setenv("INBEDDER_API_KEY", KEY)
    remote_corpus = InstructedCorpus(
        client, "news", model_kwargs=FLOAT32, query_server=server, api_key_env_var="INBEDDER_API_KEY"
    )
    expected = local_corpus.search(QUESTION, TOPIC, k=3)
    got = remote_corpus.search(QUESTION, TOPIC, k=3)
    assert [hit.id for hit in got] == [hit.id for hit in expected]
    assert np.allclose([hit.score for hit in got], [hit.score for hit in expected], atol=1e-5)

    other = "Which place is named?"
    local_corpus.index(DOCS, [other])
    with pytest.raises(MissingError, match=r"serves no name for 'Which place is named\?'.*topic="):
        remote_corpus.search(QUESTION, other)
    local_corpus.index(
        DOCS, [MOOD + " Answer in one word."], query_instructions={MOOD + " Answer in one word.": MOOD}
    )
    with pytest.raises(MissingError):
        remote_corpus.search(QUESTION, MOOD + " Answer in one word.")
    mismatched = InstructedCorpus(client, "moody", model_kwargs=FLOAT32, cache=False)
    mismatched.index(DOCS, [MOOD], query_instructions={MOOD: "How do they feel, as a question?"})
    mismatched.query_server, mismatched.api_key_env_var = server, "INBEDDER_API_KEY"
    with pytest.raises(InstructionMismatchError, match="query_instruction"):
        mismatched.search(QUESTION, MOOD)

    cli = shutil.which("inbedder", path=str(Path(sys.executable).parent))
    assert cli
    command = [cli, "search", "news", QUESTION, "--instruction", TOPIC, "-k", "3"]
    result = subprocess.run(
        [*command, "--server", server, "--path", str(tmp_path / "store")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "INBEDDER_API_KEY": KEY}, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert [row[2] for row in rows] == [hit.id for hit in expected]
    assert [float(row[1]) for row in rows] == pytest.approx([hit.score for hit in expected], abs=1e-4)


class TestStandardIntegrationRemote(EmbeddingsIntegrationTests):
    """LangChain's standard embedding suite against the server, through ``from_server``'s fields."""

    @pytest.fixture(autouse=True)
    def _running(self, server: str) -> None:
        pass

    @property
    def embeddings_class(self) -> type[InBedderEmbeddings]:
        return InBedderEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"server_url": _SERVER["url"], "served_name": "topic", "api_key": KEY}
