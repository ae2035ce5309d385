"""The fast paths give the plain path's vectors: shared prefixes, the on-disk cache, streaming."""

from __future__ import annotations

import json
import os
import sqlite3

import numpy as np
import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.cache import EmbeddingCache, text_sha256
from inbedder_integrations.engine.batching import length_batches as _length_batches
from tests.cli.test_cli import run_cli
from tests.conftest import FLOAT32

TEXTS = [
    "Our team won the cup final in extra time!",
    "The bank raised interest rates again and shares fell sharply across Europe. " * 6,
    "",
    "Short.",
    "### Response: a text that types the template's own markers ### Instruction:",
]
INSTRUCTIONS = [
    "What is the topic?",
    "How does the writer feel?",
    " Is it good news?",
    "Which country is this news about? Answer in one word.",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize("options", [{}, {"max_length": 48}, {"layer": 12}])
def test_embed_many_equals_separate_embed_calls(options):
    engine = InBedder.from_pretrained("default", dtype="float32", batch_size=2, **options)
    many = engine.embed_many(TEXTS, INSTRUCTIONS)
    assert list(many) == INSTRUCTIONS
    for instruction in INSTRUCTIONS:
        alone = engine.embed(TEXTS, instruction)
        assert many[instruction].dtype == np.float32 and many[instruction].shape == alone.shape
        assert cosines(many[instruction], alone).min() >= 0.99999
        np.testing.assert_allclose(many[instruction], alone, atol=1e-5)


def test_embed_many_in_bf16_is_as_close_to_fp32_as_embed(engine, engine_bf16):
    many = engine_bf16.embed_many(TEXTS, INSTRUCTIONS[:2])
    for instruction in INSTRUCTIONS[:2]:
        reference = engine.embed(TEXTS, instruction)
        alone = engine_bf16.embed(TEXTS, instruction)
        assert cosines(many[instruction], reference).min() >= cosines(alone, reference).min() - 2e-4
        assert cosines(many[instruction], alone).min() >= 0.9995


def test_embed_many_falls_back_where_no_prefix_is_shared(tiny_masked_model_dir):
    masked = InBedder.from_pretrained(str(tiny_masked_model_dir), dtype="float32")
    many = masked.embed_many(TEXTS[:3], INSTRUCTIONS[:2])
    for instruction in INSTRUCTIONS[:2]:
        np.testing.assert_allclose(many[instruction], masked.embed(TEXTS[:3], instruction), atol=1e-6)


def test_embed_many_rejects_bad_instructions(engine):
    with pytest.raises(TypeError, match="wrap a single one"):
        engine.embed_many(TEXTS, "What is the topic?")
    with pytest.raises(ValueError, match=r"instructions\[1\] repeats"):
        engine.embed_many(TEXTS, ["Topic?", "Topic?"])
    with pytest.raises(ValueError, match=r"instructions\[0\] must be a non-empty question"):
        engine.embed_many(TEXTS, [" "])
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        engine.embed_many(["fine", None], ["Topic?"])


def test_batches_are_cut_by_tokens_not_by_count():
    lengths = [10, 500, 20, 20, 20, 300]
    assert list(_length_batches(lengths, max_rows=4, max_tokens=1000)) == [[1, 5], [2, 3, 4, 0]]
    assert list(_length_batches(lengths, max_rows=4, max_tokens=600)) == [[1], [5, 2], [3, 4, 0]]
    assert list(_length_batches([5000], max_rows=4, max_tokens=1000)) == [[0]], "one row always fits"


def test_stream_equals_one_batch_and_names_the_bad_item(engine):
    chunks = list(engine.embed_stream((text for text in TEXTS), INSTRUCTIONS[:2], chunk_size=2))
    assert [texts for texts, _ in chunks] == [TEXTS[0:2], TEXTS[2:4], TEXTS[4:5]]
    for instruction in INSTRUCTIONS[:2]:
        streamed = np.concatenate([vectors[instruction] for _, vectors in chunks])
        np.testing.assert_allclose(streamed, engine.embed(TEXTS, instruction), atol=1e-6)
    single = next(engine.embed_stream(iter(TEXTS), INSTRUCTIONS[0]))
    assert list(single[1]) == [INSTRUCTIONS[0]]
    with pytest.raises(TypeError, match=r"texts\[3\] must be a str"):
        list(engine.embed_stream(iter(["a", "b", "c", 4]), "Topic?", chunk_size=2))


# --------------------------------------------------------------------------- the on-disk cache


@pytest.fixture
def cached_engine(tmp_path):
    cache = EmbeddingCache(tmp_path / "vectors.sqlite")
    yield InBedder.from_pretrained("default", dtype="float32", cache=cache), cache
    cache.close()


def test_cache_serves_identical_bytes_and_only_computes_misses(cached_engine, engine):
    cached, cache = cached_engine
    cold = cached.embed(TEXTS, INSTRUCTIONS[0])
    np.testing.assert_allclose(cold, engine.embed(TEXTS, INSTRUCTIONS[0]), atol=1e-6)
    warm = cached.embed(TEXTS, INSTRUCTIONS[0])
    assert warm.tobytes() == cold.tobytes()
    assert cache.info()["vectors"] == len(set(TEXTS))
    # A planted row proves the warm path reads the cache instead of the model.
    planted = np.arange(cached.dim, dtype=np.float32)
    cache.put_many(cached.cache_key, INSTRUCTIONS[0], [TEXTS[0]], planted[None, :])
    served = cached.embed(TEXTS, INSTRUCTIONS[0])
    np.testing.assert_allclose(served[0], planted / np.linalg.norm(planted), rtol=1e-6)
    assert served[1:].tobytes() == cold[1:].tobytes()
    # embed_many reads and fills the same rows.
    many = cached.embed_many(TEXTS, INSTRUCTIONS[:2])
    assert many[INSTRUCTIONS[0]].tobytes() == served.tobytes()
    assert cached.embed(TEXTS, INSTRUCTIONS[1]).tobytes() == many[INSTRUCTIONS[1]].tobytes()


def test_any_cache_key_change_misses_the_cache(cached_engine):
    """Another model or setting is another fingerprint; another dtype is the same fingerprint
    (the vectors mean the same) but another cache key: no fp32 vector reaches a bf16 engine."""
    cached, cache = cached_engine
    planted = np.ones((1, cached.dim), dtype=np.float32)
    cache.put_many(cached.cache_key, INSTRUCTIONS[0], [TEXTS[0]], planted)
    for other in (
        InBedder.from_pretrained("default", dtype="float32", max_length=256, cache=cache),
        InBedder.from_pretrained("default", dtype="float32", layer=12, cache=cache),
        InBedder.from_pretrained("default", dtype="bfloat16", cache=cache),
        InBedder.from_pretrained("default", adapter=None, dtype="float32", cache=cache),
    ):
        assert other.cache_key != cached.cache_key
        assert (other.fingerprint == cached.fingerprint) == (other.dtype == "bfloat16")
        vector = other.embed([TEXTS[0]], INSTRUCTIONS[0])[0]
        assert not np.allclose(vector, planted[0] / np.linalg.norm(planted[0]), atol=1e-3)
    raw = cached.embed([TEXTS[0]], INSTRUCTIONS[1], normalize=False)[0]
    assert not np.allclose(raw, planted[0]), "another instruction is another key"


def test_damaged_rows_and_files_are_detected_and_rebuilt(cached_engine, tmp_path):
    cached, cache = cached_engine
    good = cached.embed(TEXTS[:2], INSTRUCTIONS[0])
    with sqlite3.connect(cache.path) as connection:
        connection.execute(
            "UPDATE vectors SET vector = zeroblob(2304) WHERE text_sha256 = ?", (text_sha256(TEXTS[0]),)
        )
    np.testing.assert_allclose(cached.embed(TEXTS[:2], INSTRUCTIONS[0]), good, atol=1e-6)
    assert cache.get_many(cached.cache_key, INSTRUCTIONS[0], TEXTS[:1])[0] is not None, "recomputed"
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"SQLite format 3\x00" + os.urandom(3000))
    rebuilt = EmbeddingCache(broken)
    assert rebuilt.info()["vectors"] == 0
    assert list(tmp_path.glob("broken.sqlite.corrupt-*")), "the damaged file is kept aside, not served"
    rebuilt.close()


def test_cache_is_private_size_limited_and_clearable(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(8, 576)).astype(np.float32)
    probe = EmbeddingCache(tmp_path / "probe.sqlite")  # the file's size with 8 vectors in it
    probe.put_many("fp-a", "q", [f"old {i}" for i in range(8)], vectors)
    limit = probe.info()["used_bytes"] + 2 * 2304
    cache = EmbeddingCache(tmp_path / "small.sqlite", max_bytes=limit)
    assert (cache.path.stat().st_mode & 0o777) == 0o600
    cache.put_many("fp-a", "q", [f"old {i}" for i in range(8)], vectors)
    cache.get_many("fp-a", "q", ["old 7"])  # recently used: survives eviction
    cache.put_many("fp-b", "q", [f"new {i}" for i in range(8)], vectors)
    info = cache.info()
    assert info["used_bytes"] <= cache.max_bytes * 1.1 and info["vectors"] < 16
    survivors = cache.get_many("fp-a", "q", [f"old {i}" for i in range(8)])
    assert survivors[7] is not None and survivors[0] is None
    np.testing.assert_array_equal(cache.get_many("fp-b", "q", ["new 3"])[0], vectors[3])
    assert cache.clear("fp-b") == 8 and cache.info()["models"][0]["fingerprint"] == "fp-a"
    with pytest.raises(ValueError, match="2 texts but 1 vectors"):
        cache.put_many("fp", "q", ["a", "b"], vectors[:1])
    cache.close()


def test_indexing_fills_the_cache_and_a_second_store_reads_it(tmp_path):
    from inbedder_integrations.corpus import InstructedCorpus, connect

    path = tmp_path / "index-cache.sqlite"
    texts = [text for text in TEXTS if text.strip()]
    first = InstructedCorpus(connect(tmp_path / "a"), "news", model_kwargs=FLOAT32, cache=path)
    assert first.index(texts, INSTRUCTIONS[:2]) == dict.fromkeys(INSTRUCTIONS[:2], len(texts))
    cache = EmbeddingCache(path)
    assert cache.info()["vectors"] == 2 * len(texts)
    second = InstructedCorpus(connect(tmp_path / "b"), "news", model_kwargs=FLOAT32, cache=path)
    second.index(texts, INSTRUCTIONS[:2])
    ids = first.collection(INSTRUCTIONS[1]).get()["ids"]
    stored = [corpus.embeddings(INSTRUCTIONS[1], ids) for corpus in (first, second)]
    assert stored[0].tobytes() == stored[1].tobytes(), "the second store got the cached vectors"
    cache.close()


@pytest.mark.slow
def test_cli_caches_by_default_and_reports(tmp_path, engine):
    source = tmp_path / "texts.jsonl"
    source.write_text("\n".join(json.dumps({"text": text}) for text in TEXTS[:3]), encoding="utf-8")
    path = tmp_path / "cli.sqlite"
    env_cache = ["--cache-path", str(path)]
    for _ in range(2):
        result = run_cli(
            "embed", "--instruction", INSTRUCTIONS[0], "--input", str(source), "--output",
            str(tmp_path / "out.jsonl"), "--dtype", "float32", *env_cache,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["text"] for row in rows] == TEXTS[:3]
    expected = engine.embed(TEXTS[:3], INSTRUCTIONS[0])
    np.testing.assert_allclose(np.array([row["embedding"] for row in rows]), expected, atol=1e-5)
    info = run_cli("cache", "info", "--json", *env_cache)
    assert json.loads(info.stdout)["vectors"] == 3
    assert "deleted 3 vectors" in run_cli("cache", "clear", *env_cache).stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"txt": "typo"}\n', encoding="utf-8")
    failed = run_cli("embed", "--instruction", "Q?", "--input", str(bad), "--no-cache")
    assert (
        failed.returncode != 0 and "bad.jsonl:2: each JSONL row needs a string field 'text'" in failed.stderr
    )
