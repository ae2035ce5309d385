"""LlamaIndex: real BaseEmbedding behaviour and a persisted Chroma-backed index."""

from __future__ import annotations

import subprocess
import sys

import chromadb
import numpy as np
import pytest
from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
from llama_index.core.storage.kvstore import SimpleKVStore
from llama_index.vector_stores.chroma import ChromaVectorStore

from inbedder_integrations.llama_index import InBedderEmbedding
from tests.conftest import FLOAT32

TOPIC = "What is the topic of this text?"
FEELING = "How does the writer feel?"
TEXTS = [
    "The striker scored twice and the home side won the cup final.",
    "The central bank raised interest rates to fight inflation.",
    "The new museum wing shows paintings from the seventeenth century.",
]


def test_batches_reach_the_engine_whole(engine):
    model = InBedderEmbedding(instruction=TOPIC, model_kwargs=FLOAT32, embed_batch_size=8)
    assert InBedderEmbedding.class_name() == "InBedderEmbedding"
    calls: list[int] = []
    original = type(engine).embed

    def counting(self, texts, *args, **kwargs):
        calls.append(len(texts))
        return original(self, texts, *args, **kwargs)

    type(engine).embed = counting
    try:
        vectors = model.get_text_embedding_batch(TEXTS)
    finally:
        type(engine).embed = original
    assert calls == [len(TEXTS)]
    np.testing.assert_allclose(vectors, engine.embed(TEXTS, TOPIC), atol=1e-6)


async def test_async_batch_and_query(engine):
    model = InBedderEmbedding(instruction=TOPIC, query_instruction=FEELING, model_kwargs=FLOAT32)
    vectors = await model.aget_text_embedding_batch(TEXTS)
    np.testing.assert_allclose(vectors, engine.embed(TEXTS, TOPIC), atol=1e-6)
    query = await model.aget_query_embedding("Who won?")
    np.testing.assert_allclose(query, engine.embed(["Who won?"], FEELING)[0], atol=1e-6)
    np.testing.assert_allclose(model.get_query_embedding("Who won?"), query, atol=1e-6)


def test_embeddings_cache_refused_when_queries_and_documents_differ():
    with pytest.raises(ValueError, match="embeddings_cache keys on the text alone"):
        InBedderEmbedding(
            instruction=TOPIC,
            query_instruction=FEELING,
            model_kwargs=FLOAT32,
            embeddings_cache=SimpleKVStore(),
        )
    cached = InBedderEmbedding(instruction=TOPIC, model_kwargs=FLOAT32, embeddings_cache=SimpleKVStore())
    assert cached.cache_namespace.startswith("inbedder:")


@pytest.mark.slow
def test_persisted_chroma_index_reopens_and_answers(tmp_path):
    path = str(tmp_path / "chroma")
    model = InBedderEmbedding(instruction=TOPIC, model_kwargs=FLOAT32)
    collection = chromadb.PersistentClient(path=path).create_collection(
        "llama-topic", configuration={"hnsw": {"space": "cosine"}}
    )
    storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
    VectorStoreIndex.from_documents(
        [Document(text=text, id_=f"doc-{i}") for i, text in enumerate(TEXTS)],
        storage_context=storage,
        embed_model=model,
    )
    del storage, collection

    reopened = chromadb.PersistentClient(path=path).get_collection("llama-topic")
    assert reopened.count() == len(TEXTS)
    index = VectorStoreIndex.from_vector_store(
        ChromaVectorStore(chroma_collection=reopened), embed_model=model
    )
    hits = index.as_retriever(similarity_top_k=3).retrieve(TEXTS[1])
    assert hits[0].node.get_content() == TEXTS[1]
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    # "no_text" returns the retrieved sources without generating. LlamaIndex still resolves a
    # default LLM (OpenAI) for it; `Settings.llm = None` is its documented way to disable that.
    # Answer generation with a local model is the RAG recipe's job.
    Settings.llm = None
    response = index.as_query_engine(response_mode="no_text", similarity_top_k=2).query(TEXTS[0])
    assert response.source_nodes[0].node.get_content() == TEXTS[0]


def test_missing_llama_index_gives_an_actionable_error():
    code = "import sys; sys.modules['llama_index.core'] = None; import inbedder_integrations.llama_index"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "pip install 'inbedder-integrations[llama-index]'" in result.stderr
