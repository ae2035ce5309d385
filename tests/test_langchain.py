"""LangChain: the public standard suites and real LangChain objects on the real model."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import numpy as np
import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests
from pydantic import ValidationError

from inbedder_integrations.langchain import InBedderEmbeddings
from tests.conftest import FLOAT32

TOPIC = "What is the topic of this text?"
FEELING = "How does the writer feel?"
PARAMS = {"instruction": TOPIC, "model_kwargs": FLOAT32}


class _InBedderUnderTest:
    """What both LangChain standard suites construct: the real default model in fp32."""

    @property
    def embeddings_class(self) -> type[InBedderEmbeddings]:
        return InBedderEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return PARAMS


class TestStandardUnit(_InBedderUnderTest, EmbeddingsUnitTests):
    pass


class TestStandardIntegration(_InBedderUnderTest, EmbeddingsIntegrationTests):
    pass


def test_vectors_are_the_engines_under_each_instruction(engine):
    embeddings = InBedderEmbeddings(instruction=TOPIC, query_instruction=FEELING, model_kwargs=FLOAT32)
    texts = ["Our team won the cup!", "Stocks fell sharply."]
    documents = embeddings.embed_documents(texts)
    assert all(isinstance(value, float) for value in documents[0])
    np.testing.assert_allclose(documents, engine.embed(texts, TOPIC), atol=1e-6)
    np.testing.assert_allclose(
        embeddings.embed_query(texts[0]), engine.embed(texts[:1], FEELING)[0], atol=1e-6
    )
    assert embeddings.fingerprint == engine.fingerprint


def test_query_instruction_defaults_to_instruction():
    embeddings = InBedderEmbeddings(instruction=TOPIC, model_kwargs=FLOAT32)
    np.testing.assert_allclose(
        embeddings.embed_query("Stocks fell."), embeddings.embed_documents(["Stocks fell."])[0], atol=1e-6
    )


def test_fields_are_validated():
    with pytest.raises(ValidationError, match="instruction"):
        InBedderEmbeddings()
    with pytest.raises(TypeError, match="unknown argument 'instruciton'; did you mean 'instruction'"):
        InBedderEmbeddings(instruction=TOPIC, instruciton="typo")
    with pytest.raises(ValueError, match="instruction must be a non-empty question"):
        InBedderEmbeddings(instruction=" ")
    embeddings = InBedderEmbeddings(instruction=TOPIC, model_kwargs=FLOAT32)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        embeddings.embed_documents(["fine", None])
    with pytest.raises(TypeError, match="query must be a str"):
        embeddings.embed_query(None)


async def test_async_does_not_block_the_event_loop():
    embeddings = InBedderEmbeddings(instruction=TOPIC, model_kwargs=FLOAT32)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(ticker())
    vectors = await embeddings.aembed_documents(["A long text about football and goals. " * 30] * 8)
    task.cancel()
    assert len(vectors) == 8
    assert ticks > 5, "the event loop was blocked while embedding"
    np.testing.assert_allclose(await embeddings.aembed_query("x"), embeddings.embed_query("x"), atol=1e-6)


def test_cache_backed_embeddings_need_the_namespace():
    from langchain_classic.embeddings import CacheBackedEmbeddings
    from langchain_core.stores import InMemoryByteStore

    store = InMemoryByteStore()
    topic = InBedderEmbeddings(instruction=TOPIC, model_kwargs=FLOAT32)
    feeling = InBedderEmbeddings(instruction=FEELING, model_kwargs=FLOAT32)
    assert topic.cache_namespace != feeling.cache_namespace
    assert topic.fingerprint in topic.cache_namespace
    texts = ["The bank collapsed and I lost everything."]
    cached_topic = CacheBackedEmbeddings.from_bytes_store(
        topic, store, namespace=topic.cache_namespace, key_encoder="sha256"
    )
    cached_feeling = CacheBackedEmbeddings.from_bytes_store(
        feeling, store, namespace=feeling.cache_namespace, key_encoder="sha256"
    )
    first = cached_topic.embed_documents(texts)
    np.testing.assert_allclose(
        cached_feeling.embed_documents(texts), feeling.embed_documents(texts), atol=1e-6
    )
    assert cached_topic.embed_documents(texts) == first
    # Without the namespace the cache would serve the topic vector for the feeling question.
    shared = InMemoryByteStore()
    CacheBackedEmbeddings.from_bytes_store(topic, shared, key_encoder="sha256").embed_documents(texts)
    served = CacheBackedEmbeddings.from_bytes_store(feeling, shared, key_encoder="sha256").embed_documents(
        texts
    )
    np.testing.assert_allclose(served, first, atol=1e-6)
    assert not np.allclose(served, feeling.embed_documents(texts), atol=1e-3)


def test_cache_namespace_tells_normalised_from_raw_vectors():
    from langchain_core.stores import InMemoryByteStore

    raw = InBedderEmbeddings(instruction=TOPIC, normalize=False, model_kwargs=FLOAT32)
    unit = InBedderEmbeddings(instruction=TOPIC, model_kwargs=FLOAT32)
    assert raw.cache_namespace != unit.cache_namespace
    store, texts = InMemoryByteStore(), ["The bank collapsed and I lost everything."]
    assert np.linalg.norm(raw.cache_backed(store).embed_documents(texts)[0]) > 2, "raw: not unit length"
    served = unit.cache_backed(store).embed_documents(texts)
    assert np.linalg.norm(served[0]) == pytest.approx(1.0, abs=1e-5), "the raw vector was served"


def test_cache_backed_keys_queries_apart_from_documents():
    from langchain_core.stores import InMemoryByteStore

    asked = InBedderEmbeddings(instruction=TOPIC, query_instruction=FEELING, model_kwargs=FLOAT32)
    assert asked.query_cache_namespace != asked.cache_namespace
    same = InBedderEmbeddings(instruction=TOPIC, model_kwargs=FLOAT32)
    assert same.query_cache_namespace == same.cache_namespace, "same question, same vectors: one namespace"
    text, store = "The bank collapsed and I lost everything.", InMemoryByteStore()
    cached = asked.cache_backed(store, query_cache=True)
    query = cached.embed_query(text)
    document = cached.embed_documents([text])[0]
    np.testing.assert_allclose(query, asked.embed_query(text), atol=1e-6)
    np.testing.assert_allclose(document, asked.embed_documents([text])[0], atol=1e-6)
    assert float(np.dot(query, document)) < 0.99, "the premise: the two questions give other vectors"
    # Served from the cache the second time, each from its own namespace.
    again = asked.cache_backed(store, query_cache=True)
    assert again.embed_documents([text])[0] == document and again.embed_query(text) == query
    assert len(list(store.yield_keys())) == 2


def test_langchain_chroma_in_cosine_space(chroma_client):
    from langchain_chroma import Chroma

    embeddings = InBedderEmbeddings(instruction=TOPIC, model_kwargs=FLOAT32)
    store = Chroma(
        collection_name="langchain-topic",
        embedding_function=embeddings,
        client=chroma_client,
        collection_configuration={"hnsw": {"space": "cosine"}},
    )
    texts = ["The striker scored twice in the final.", "The central bank raised interest rates."]
    ids = store.add_texts(texts, metadatas=[{"n": 0}, {"n": 1}])
    assert len(ids) == 2
    hits = store.similarity_search_with_score(texts[1], k=2)
    assert hits[0][0].page_content == texts[1]
    assert hits[0][1] == pytest.approx(0.0, abs=1e-4)  # cosine distance to itself
    assert store._collection.configuration_json["hnsw"]["space"] == "cosine"


def test_missing_langchain_gives_an_actionable_error():
    code = "import sys; sys.modules['langchain_core'] = None; import inbedder_integrations.langchain"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "pip install 'inbedder-integrations[langchain]'" in result.stderr
