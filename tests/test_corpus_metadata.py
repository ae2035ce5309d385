"""Metadata reaches Chroma exactly as given, or is refused before anything is written.

Chroma drops a NaN, stores 2**70 as a float in the embedded store, and refuses
it on a server only when that batch arrives; reserved keys (``chroma:document``,
``$and``, ``#document``, ``""``) fail the same way.  ``to_documents`` checks every
row first, so a refused corpus writes nothing, and the error names the row by its
position in the caller's input and by its id.
"""

from __future__ import annotations

import math

import chromadb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbedder_integrations.corpus import TEXT_HASH_KEY, InstructedCorpus, to_documents
from inbedder_integrations.errors import InvalidArgumentError, InvalidTypeError
from tests.conftest import FLOAT32

TOPIC = "What is the topic?"
BAD_VALUES = [
    (float("nan"), "NaN or infinities"),
    (float("inf"), "NaN or infinities"),
    (-math.inf, "NaN or infinities"),
    (2**70, "64-bit int"),
    (-(2**63) - 1, "64-bit int"),
    ({"nested": 1}, "must be a str, int, float or bool"),
    ([1, 2], "must be a str, int, float or bool"),
    (None, "must be a str, int, float or bool"),
]
RESERVED_KEYS = [
    "chroma:document",
    "",
    "$and",
    "#document",
    TEXT_HASH_KEY,
    "inbedder_sources",
    "inbedder_sources_v2",
]


def rows(bad_at: int, metadata: dict[str, object], size: int = 80) -> list[dict[str, object]]:
    return [
        {
            "text": f"Row {n} of the corpus.",
            "id": f"row-{n}",
            "metadata": metadata if n == bad_at else {"n": n},
        }
        for n in range(size)
    ]


@pytest.mark.parametrize(("value", "message"), BAD_VALUES)
def test_a_bad_value_is_named_by_position_and_id(value: object, message: str) -> None:
    error = InvalidTypeError if "must be" in message else InvalidArgumentError
    with pytest.raises(error, match=rf"documents\[70\] \(id 'row-70'\)\['metadata'\]\['score'\].*{message}"):
        to_documents(rows(70, {"score": value}))


@pytest.mark.parametrize("key", RESERVED_KEYS)
def test_a_reserved_key_is_refused(key: str) -> None:
    with pytest.raises(InvalidArgumentError, match=r"documents\[70\] \(id 'row-70'\)\['metadata'\]"):
        to_documents(rows(70, {key: "x"}))


def test_the_edges_that_chroma_keeps_are_accepted() -> None:
    edges = {"big": 2**63 - 1, "small": -(2**63), "tiny": 5e-324, "flag": True, "empty": "", "huge": 1.7e308}
    (document,) = to_documents([{"text": "edges", "metadata": edges}])
    assert document.metadata == edges


@pytest.mark.parametrize(("metadata", "error"), [({"n": float("nan")}, "NaN"), ({"$and": 1}, "reserved")])
def test_index_writes_nothing_when_a_later_row_is_refused(
    metadata: dict[str, object], error: str, chroma_client
) -> None:
    """The bad row sits in the second batch: the first must not have been written either."""
    corpus = InstructedCorpus(chroma_client, "meta", model_kwargs=FLOAT32, cache=False)
    with pytest.raises(ValueError, match=rf"documents\[70\] \(id 'row-70'\).*{error}"):
        corpus.index(rows(70, metadata), [TOPIC], batch_size=64)
    assert corpus.instructions() == [], "no collection was even created"


# Values that Chroma could store, or that it could not; keys that are fine or reserved.
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)
keys = st.one_of(st.text(max_size=12), st.sampled_from(RESERVED_KEYS))


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same 150 examples every run: CI never fails on a new draw
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(metadata=st.dictionaries(keys, scalars, min_size=1, max_size=4))
def test_metadata_is_stored_exactly_or_refused(metadata: dict[str, object]) -> None:
    """Accepted metadata comes back from a real (embedded) Chroma equal in type and value (a
    float to its last bit: 1.0026500522934773e+39 came back as ...771e+39)."""
    try:
        (document,) = to_documents([{"text": "a text", "id": "the-id", "metadata": metadata}])
    except (ValueError, TypeError):
        return  # refused before any write (the index test above shows nothing is written)
    collection = _collection()
    row_id = f"row-{collection.count()}"  # a new row each time: an upsert would merge metadata
    collection.add(ids=[row_id], embeddings=[[0.0, 1.0]], metadatas=[document.metadata])
    stored = collection.get(ids=[row_id], include=["metadatas"])["metadatas"][0]
    assert stored.keys() == metadata.keys()
    assert [type(stored[key]) for key in metadata] == [type(value) for value in metadata.values()]
    for key, value in metadata.items():
        if isinstance(value, float):  # Chroma's JSON float parser can move the last bit (found here)
            assert abs(stored[key] - value) <= math.ulp(value), (key, value, stored[key])
        else:
            assert stored[key] == value, key


_CLIENT: list[chromadb.api.ClientAPI] = []


def _collection() -> chromadb.Collection:
    if not _CLIENT:
        _CLIENT.append(chromadb.EphemeralClient())
    return _CLIENT[0].get_or_create_collection("metadata-round-trip")
