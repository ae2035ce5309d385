"""A server's answer is another party's data: the remote embedder keeps only rows that are what it
asked for, waits only as long as it allows, and stores nothing from a bad answer.

The server here is a local fake (``tests/fake_server.py``) that answers wrongly on purpose;
the real server's answers are tested in test_remote.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from inbedder_integrations.chroma import InBedderEmbeddingFunction, open_collection
from inbedder_integrations.errors import InBedderError, InvalidArgumentError, VectorError
from inbedder_integrations.remote import RemoteEmbedder, ServerError, retry_after
from inbedder_integrations.vectors import check_vectors
from tests.fake_server import DIM, FakeServer, answer, endless, rows_plan, trickle, unit_rows

TEXTS = ["one", "two", "three"]


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    yield from FakeServer().serve()


def remote(fake: FakeServer, **options: object) -> RemoteEmbedder:
    return RemoteEmbedder(fake.url, "topic", **options)  # type: ignore[arg-type]


def test_right_rows_pass_in_order(fake: FakeServer) -> None:
    vectors = remote(fake, batch_size=2).embed_documents_array(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (3, DIM)
    # chunks of 2 and 1: each chunk's rows in the order of its texts
    assert np.allclose(vectors, np.asarray(unit_rows(2) + unit_rows(1), dtype=np.float32))


def _scaled(count: int) -> list[list[float]]:
    return (np.asarray(unit_rows(count)) * 24_000).tolist()


def _ragged(count: int) -> list[list[float]]:
    return [unit_rows(1)[0], unit_rows(1)[0][:4], *unit_rows(count - 2)]


def _nan(count: int) -> list[list[float]]:
    rows = unit_rows(count)
    rows[-1][0] = math.nan
    return rows


BAD_ANSWERS = {
    "width 3": (lambda count: [row[:3] for row in unit_rows(count)], "3-wide"),
    "one row fewer": (lambda count: unit_rows(count - 1), "2 rows for 3 texts"),
    "one row more": (lambda count: unit_rows(count + 1), "4 rows for 3 texts"),
    "a NaN": (_nan, "non-finite"),
    "norm 24,000": (_scaled, "unit length"),
    "numbers as strings": (lambda count: [[str(x) for x in row] for row in unit_rows(count)], "not numbers"),
    "unequal widths": (_ragged, "unequal"),
    "not a list": (lambda count: {"embeddings": unit_rows(count)}, "dict rows"),
}


@pytest.mark.parametrize("case", list(BAD_ANSWERS))
def test_a_wrong_answer_is_refused_by_name(fake: FakeServer, case: str) -> None:
    make, message = BAD_ANSWERS[case]
    fake.plan = rows_plan(make)
    with pytest.raises(VectorError, match=message):
        remote(fake).embed_documents_array(TEXTS)


def test_rows_that_a_later_chunk_would_make_up_for_are_still_refused(fake: FakeServer) -> None:
    """2 + 2 texts answered with 3 rows, then 1: in all 4, but the last two texts would get the
    wrong vectors; each chunk is checked on its own."""
    answers = iter([unit_rows(3), unit_rows(1)])
    fake.plan = lambda texts: answer(next(answers))(texts)
    with pytest.raises(VectorError, match=r"(3|1) rows for 2 texts"):  # the chunks go out at once
        remote(fake, batch_size=2).embed_documents_array(["a", "b", "c", "d"])


def test_an_endless_body_is_cut_off_early(fake: FakeServer) -> None:
    fake.plan = endless()
    with pytest.raises(ServerError, match="more than the"):
        remote(fake).embed_documents_array(TEXTS)
    assert fake.sent_bytes < 5_000_000, "the client stopped reading long before 100 MB"


def test_a_declared_huge_body_is_refused_unread(fake: FakeServer) -> None:
    fake.plan = lambda texts: (200, {"Content-Length": str(100 * 2**20)}, iter([b"[]"]))
    with pytest.raises(ServerError, match="104857600 bytes"):
        remote(fake).embed_documents_array(TEXTS)


def test_a_bad_answer_stores_nothing_in_chroma(fake: FakeServer, tmp_path: Path) -> None:
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    function = InBedderEmbeddingFunction.from_server(fake.url, "topic")
    collection = open_collection(client, "remote", instruction=None, function=function)
    collection.add(ids=["0"], documents=["kept"])
    fake.plan = rows_plan(lambda count: [row[:3] for row in unit_rows(count)])
    with pytest.raises(ValueError, match="3-wide"):
        collection.add(ids=["1", "2"], documents=["a", "b"])
    assert collection.count() == 1 and collection.get()["ids"] == ["0"]


# --------------------------------------------------------------------------- bounded waits


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("1e9", 30.0), ("inf", 30.0), ("nan", 30.0), ("-5", 0.0), ("soon", 0.5), (None, 0.5)],
)
def test_retry_after_is_capped(header: str | None, expected: float) -> None:
    assert retry_after(header, 0.5, 30.0) == expected


def test_a_busy_server_asking_for_a_billion_seconds_is_retried_within_the_cap(fake: FakeServer) -> None:
    answers = iter([answer({"error": "busy"}, 503, {"Retry-After": "1e9"}), answer(unit_rows(3))])
    fake.plan = lambda texts: next(answers)(texts)
    started = time.monotonic()
    vectors = remote(fake, max_retry_after=0.2).embed_documents_array(TEXTS)
    assert vectors.shape == (3, DIM) and time.monotonic() - started < 5


@pytest.mark.parametrize("header", ["inf", "nan"])
def test_non_finite_retry_after_does_not_crash(fake: FakeServer, header: str) -> None:
    answers = iter([answer({"error": "busy"}, 503, {"Retry-After": header}), answer(unit_rows(3))])
    fake.plan = lambda texts: next(answers)(texts)
    assert remote(fake, max_retry_after=0.1).embed_documents_array(TEXTS).shape == (3, DIM)


def test_a_server_that_answers_a_byte_at_a_time_cannot_hold_a_call(fake: FakeServer) -> None:
    embedder = remote(fake, timeout=2)
    fake.plan = trickle(0.05)  # each read takes 0.05 s; the whole answer ~3 s
    started = time.monotonic()
    with pytest.raises(ServerError, match="within 2 s"):
        embedder.embed_documents_array(TEXTS)
    assert time.monotonic() - started < 3.5


async def test_the_deadline_holds_for_async_calls_too(fake: FakeServer) -> None:
    embedder = remote(fake, timeout=2)
    fake.plan = trickle(0.05)
    started = time.monotonic()
    with pytest.raises(ServerError, match="within 2 s"):
        await embedder.aembed_documents(TEXTS)
    assert time.monotonic() - started < 3.5


@pytest.mark.parametrize("name", ["timeout", "max_retry_after"])
@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, "5", True])
def test_wait_options_are_checked(fake: FakeServer, name: str, value: object) -> None:
    with pytest.raises(InvalidArgumentError, match=name):
        remote(fake, **{name: value})


def test_a_description_that_is_not_one_is_refused(fake: FakeServer) -> None:
    entry = {"id": "topic", "instruction": "q", "fingerprint": "f", "dim": "8"}
    fake.describe = lambda path: {"data": [entry]}
    with pytest.raises(ServerError, match="width of '8'"):
        remote(fake)
    fake.describe = lambda path: ["not", "an", "object"]
    with pytest.raises(ServerError, match="JSON list"):
        remote(fake)


# --------------------------------------------------------------------------- the one check


@pytest.mark.parametrize(
    ("vectors", "message"),
    [
        (np.ones((2, 4)) / 2, "shape"),
        (np.ones((3, 5)) / math.sqrt(5), "5-wide"),
        (np.full((3, 4), np.nan), "non-finite"),
        (np.full((3, 4), 1e39), "non-finite"),  # finite in float64, infinite in float32
        (np.ones((3, 4)), "unit length"),
        (np.array([["a"] * 4] * 3), "not numbers"),
    ],
)
def test_check_vectors_refuses(vectors: np.ndarray, message: str) -> None:
    with pytest.raises(VectorError, match=message):
        check_vectors(vectors, rows=3, dim=4, normalized=True, source="test")
    assert issubclass(VectorError, InBedderError)


def test_check_vectors_passes_float32_rows_through() -> None:
    rows = np.ones((3, 4), dtype=np.float64) / 2
    checked = check_vectors(rows, rows=3, dim=4, normalized=True, source="test")
    assert checked.dtype == np.float32 and np.array_equal(checked, rows.astype(np.float32))
    raw = np.full((3, 4), 7.0)
    assert check_vectors(raw, rows=3, dim=4, normalized=False, source="test").shape == (3, 4)


def test_the_engine_refuses_vectors_its_damaged_weights_make(tmp_path: Path, engine) -> None:
    """A model whose weights turn NaN after loading (an overflow, a bad in-place edit) gives no
    vector: a tiny randomly initialised Llama here, damaged in memory."""
    import torch

    from inbedder_integrations import InBedder
    from tests.cross_cutting.test_security import tiny_llama

    damaged = InBedder.from_pretrained(str(tiny_llama(tmp_path / "tiny", engine)), dtype="float32")
    assert damaged.embed(["fine"], "What is it?").shape == (1, 16)
    with torch.no_grad():
        next(damaged.model.parameters()).fill_(math.nan)
    with pytest.raises(VectorError, match="non-finite"):
        damaged.embed(["not fine"], "What is it?")
    damaged.close()
