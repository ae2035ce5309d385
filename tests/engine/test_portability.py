"""A collection opens on any machine: what a vector means (its fingerprint) is apart from how
it was computed (dtype, device), which only the embedding cache keys on.

Collections are built on the tiny random OPT of ``tests/data/checkpoints`` (cheap in bf16 even
where bf16 is emulated); ``tests/data/legacy`` holds a Chroma store, an embedding cache and
vectors written by release 0.1.0's main (commit 3a7ad2c, see its provenance.json), whose
fingerprints also hashed the dtype.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import chromadb
import numpy as np
import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.cache import EmbeddingCache
from inbedder_integrations.chroma import InBedderEmbeddingFunction, InstructionMismatchError, open_collection

DATA = Path(__file__).resolve().parents[1] / "data"
MODEL = str(DATA / "checkpoints" / "opt-1.3b-InBedder")
LEGACY = DATA / "legacy"
PROVENANCE = json.loads((LEGACY / "provenance.json").read_text())
DOCS, TOPIC = PROVENANCE["documents"], PROVENANCE["instruction"]
#: bf16 and fp32 vectors of the same text mean the same: this close, and no closer to other texts.
BF16_COSINE = 0.999


def unit(vectors: object) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    return array / np.linalg.norm(array, axis=-1, keepdims=True)


@pytest.mark.parametrize(("built", "opened"), [("float32", "bfloat16"), ("bfloat16", "float32")])
def test_a_collection_built_in_one_dtype_opens_and_grows_in_the_other(chroma_client, built, opened):
    created = open_collection(
        chroma_client, "portable", instruction=TOPIC, model=MODEL, model_kwargs={"dtype": built}
    )
    created.add(ids=["a", "b", "c"], documents=DOCS)
    stored = created.get(ids=["a", "b", "c"], include=["embeddings"])["embeddings"]
    for reopened in (
        open_collection(
            chroma_client, "portable", instruction=TOPIC, model=MODEL, model_kwargs={"dtype": opened}
        ),
        InBedderEmbeddingFunction.build_from_config(  # what Chroma does on every use of a collection
            {**created.configuration_json["embedding_function"]["config"], "model_kwargs": {"dtype": opened}}
        ),
    ):
        if isinstance(reopened, InBedderEmbeddingFunction):
            vectors = unit(reopened(DOCS))
        else:
            reopened.add(ids=["d"], documents=["A fourth text, added from the other machine."])
            assert reopened.count() == 4
            hits = reopened.query(query_texts=DOCS, n_results=1)
            assert [row[0] for row in hits["ids"]] == ["a", "b", "c"]
            vectors = unit(reopened._embedding_function(DOCS))  # type: ignore[misc]
        agreement = unit(stored) @ vectors.T
        assert np.diag(agreement).min() >= BF16_COSINE
    with pytest.raises(InstructionMismatchError, match="fingerprint"):  # meaning still guarded
        open_collection(
            chroma_client, "portable", instruction=TOPIC, model=MODEL, model_kwargs={"max_length": 64}
        )


@pytest.mark.parametrize("written", ["float32", "bfloat16"])
@pytest.mark.parametrize("opened", ["float32", "bfloat16"])
def test_a_collection_written_by_release_0_1_opens(tmp_path, monkeypatch, written, opened):
    shutil.copytree(LEGACY / "chroma", tmp_path / "chroma")
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    name = f"news-{written}"
    persisted = client.get_collection(name).configuration_json["embedding_function"]["config"]
    assert persisted["fingerprint"] == PROVENANCE["fingerprints"][written]  # the old format, dtype included
    engine = InBedder.from_pretrained(MODEL, dtype=opened, cache=False)
    assert engine.fingerprint != persisted["fingerprint"] and engine.accepts_fingerprint(
        persisted["fingerprint"]
    )

    collection = open_collection(client, name, instruction=TOPIC, model=MODEL, model_kwargs={"dtype": opened})
    hits = collection.query(query_texts=DOCS, n_results=1)
    assert [row[0] for row in hits["ids"]] == ["a", "b", "c"]
    monkeypatch.chdir(LEGACY)  # it persisted its model as a path relative to this folder
    persisted_settings = open_collection(client, name, instruction=None)
    assert persisted_settings.count() == 3
    persisted_settings.add(ids=["d"], documents=["A new text embedded by this release."])
    assert persisted_settings.count() == 4


def test_vectors_are_unchanged_since_release_0_1():
    for dtype in ("float32", "bfloat16"):
        old = np.load(LEGACY / f"vectors-{dtype}.npy")
        new = InBedder.from_pretrained(MODEL, dtype=dtype, cache=False).embed(DOCS, TOPIC, normalize=False)
        np.testing.assert_allclose(new, old, atol=1e-5 if dtype == "float32" else 2e-2)


def test_the_cache_never_serves_a_vector_computed_in_another_dtype(tmp_path):
    shutil.copy(LEGACY / "embeddings.sqlite", tmp_path / "embeddings.sqlite")  # written by release 0.1
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    fp32 = InBedder.from_pretrained(MODEL, dtype="float32", cache=cache)
    bf16 = InBedder.from_pretrained(MODEL, dtype="bfloat16", cache=cache)
    assert fp32.fingerprint == bf16.fingerprint and fp32.cache_key != bf16.cache_key
    planted = np.full((1, fp32.dim), 7.0, dtype=np.float32)
    cache.put_many(fp32.cache_key, TOPIC, DOCS[:1], planted)
    np.testing.assert_array_equal(fp32.embed(DOCS[:1], TOPIC, normalize=False), planted)  # a hit
    assert not np.allclose(bf16.embed(DOCS[:1], TOPIC, normalize=False), planted)  # not for bf16
    # Release 0.1's rows are never served (its keys are its fingerprints), nor in the way.
    old_keys = {row["fingerprint"] for row in cache.info()["models"]}
    assert set(PROVENANCE["fingerprints"].values()) <= old_keys
    expected = np.load(LEGACY / "vectors-float32.npy")
    np.testing.assert_allclose(fp32.embed(DOCS, TOPIC, normalize=False)[1:], expected[1:], atol=1e-5)
    assert cache.clear(fp32.fingerprint) == 4  # every dtype's rows of this fingerprint, nothing else
    assert set(PROVENANCE["fingerprints"].values()) <= {row["fingerprint"] for row in cache.info()["models"]}
