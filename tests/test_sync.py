"""A corpus kept equal to its source: metadata updates, deletes and cleanup, on a real Chroma.

Each test runs against embedded Chroma and a real ``chroma run`` server.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inbedder_integrations.corpus import SOURCES_KEY, TEXT_HASH_KEY, InstructedCorpus
from inbedder_integrations.errors import InBedderError, InvalidArgumentError
from inbedder_integrations.source_tokens import legacy_source, recorded_tokens, source_token, source_value
from tests.conftest import FLOAT32

TOPIC, FEELING = "What is the topic?", "How does the writer feel?"
DOCS = [
    {"text": "The striker scored twice in the final.", "id": "a1", "metadata": {"source": "a", "v": 1}},
    {"text": "The bank raised interest rates again.", "id": "a2", "metadata": {"source": "a", "v": 1}},
    {"text": "I lost my keys and I am furious.", "id": "b1", "metadata": {"source": "b", "v": 1}},
]


def stored(corpus: InstructedCorpus, instruction: str) -> dict[str, dict[str, object]]:
    got = corpus.collection(instruction).get(include=["metadatas"])
    return {
        id_: {k: v for k, v in (meta or {}).items() if k not in (TEXT_HASH_KEY, SOURCES_KEY)}
        for id_, meta in zip(got["ids"], got["metadatas"] or [], strict=True)
    }


@pytest.fixture
def corpus(chroma_client) -> InstructedCorpus:
    corpus = InstructedCorpus(chroma_client, "sync", model_kwargs=FLOAT32, cache=False)
    assert corpus.index(DOCS, [TOPIC, FEELING]) == {TOPIC: 3, FEELING: 3}
    return corpus


def test_changed_metadata_is_applied_without_embedding(corpus: InstructedCorpus) -> None:
    before = corpus.embeddings(TOPIC, ["a1", "a2", "b1"])
    changed = [{**d, "metadata": {"source": d["metadata"]["source"], "v": 2}} for d in DOCS[:2]] + DOCS[2:]
    result = corpus.sync(changed, [TOPIC, FEELING])
    assert result.written == {TOPIC: 0, FEELING: 0}, "no text changed: nothing embedded"
    assert result.updated == {TOPIC: 2, FEELING: 2}
    for instruction in (TOPIC, FEELING):
        assert stored(corpus, instruction) == {
            "a1": {"source": "a", "v": 2},
            "a2": {"source": "a", "v": 2},
            "b1": {"source": "b", "v": 1},
        }
    np.testing.assert_array_equal(corpus.embeddings(TOPIC, ["a1", "a2", "b1"]), before)
    # A key the document lost is removed, not kept by Chroma's metadata merge.
    assert corpus.sync([{**DOCS[0], "metadata": {"source": "a"}}], [TOPIC]).updated == {TOPIC: 1}
    assert stored(corpus, TOPIC)["a1"] == {"source": "a"}
    # ... also when the text changed too (an upsert merges metadata the same way).
    edited = {"text": "The striker scored three times.", "id": "a2", "metadata": {"source": "a"}}
    assert corpus.sync([edited], [TOPIC]).written == {TOPIC: 1}
    assert stored(corpus, TOPIC)["a2"] == {"source": "a"}
    assert corpus.sync([edited], [TOPIC]).written == {TOPIC: 0}, "and the rerun finds it in sync"


def test_full_cleanup_removes_what_the_source_lost_under_every_instruction(corpus: InstructedCorpus) -> None:
    result = corpus.sync(DOCS[:1], [TOPIC], cleanup="full")
    assert result.written == {TOPIC: 0} and result.deleted == {TOPIC: 2, FEELING: 2}
    for instruction in (TOPIC, FEELING):
        assert list(stored(corpus, instruction)) == ["a1"]
        assert [hit.id for hit in corpus.search("football", instruction, k=5)] == ["a1"]


def test_incremental_cleanup_touches_only_the_sources_in_the_input(corpus: InstructedCorpus) -> None:
    result = corpus.sync(DOCS[:1], [TOPIC, FEELING], cleanup="incremental")
    assert result.deleted == {TOPIC: 1, FEELING: 1}, "a2 shared source 'a' and is gone from it"
    assert sorted(stored(corpus, FEELING)) == ["a1", "b1"]
    assert corpus.sync([{"text": "no source"}], [TOPIC], cleanup="incremental").deleted == {
        TOPIC: 0,
        FEELING: 0,
    }


def test_delete_removes_ids_under_every_instruction(corpus: InstructedCorpus) -> None:
    assert corpus.delete(["a2", "missing"]) == {TOPIC: 1, FEELING: 1}
    assert sorted(stored(corpus, TOPIC)) == sorted(stored(corpus, FEELING)) == ["a1", "b1"]
    assert corpus.delete(["a2"]) == {TOPIC: 0, FEELING: 0}
    with pytest.raises(TypeError, match="wrap a single id"):
        corpus.delete("a1")  # type: ignore[arg-type]


def test_bad_cleanup_and_batch_size_write_nothing(chroma_client) -> None:
    corpus = InstructedCorpus(chroma_client, "sync-bad", model_kwargs=FLOAT32, cache=False)
    with pytest.raises(InvalidArgumentError, match="cleanup must be one of"):
        corpus.sync(DOCS, [TOPIC], cleanup="everything")
    for size in (0, -1):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            corpus.index(DOCS, [TOPIC], batch_size=size)
    assert corpus.instructions() == []


def test_cli_cleanup_deletes_files_gone_from_the_folder(tmp_path, capsys) -> None:
    from inbedder_integrations.cli import main

    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in (("keep.txt", "The striker scored twice."), ("gone.txt", "The bank raised rates.")):
        (folder / name).write_text(text, encoding="utf-8")
    common = [
        "--name",
        "notes",
        "--instruction",
        TOPIC,
        "--path",
        str(tmp_path / "store"),
        "--dtype",
        "float32",
    ]
    main(["index", str(folder), *common, "--no-cache"])
    (folder / "gone.txt").unlink()
    main(["index", str(folder), *common, "--no-cache", "--cleanup", "full"])
    said = capsys.readouterr().out
    assert (
        "0 written, 0 metadata updated, 1 already there" in said and "1 deleted, gone from the source" in said
    )
    from inbedder_integrations.corpus import InstructedCorpus, connect

    corpus = InstructedCorpus(connect(tmp_path / "store"), "notes", model_kwargs=FLOAT32)
    assert corpus.collection(TOPIC).get()["ids"] == ["keep.txt"]


SHARED = "Opening hours: Monday to Friday, nine to five."


def files(a: list[str], b: list[str]) -> list[dict[str, object]]:
    """Two files' paragraphs with content ids (the default), as `inbedder index` makes them."""
    return [{"text": t, "metadata": {"source": "a.txt"}} for t in a] + [
        {"text": t, "metadata": {"source": "b.txt"}} for t in b
    ]


def test_a_paragraph_two_sources_share_survives_one_of_them_dropping_it(corpus: InstructedCorpus) -> None:
    a_only, b_only = "The striker scored twice.", "Interest rates rose again."
    corpus.sync(files([a_only, SHARED], [SHARED, b_only]), [TOPIC, FEELING])
    ids_before = set(stored(corpus, TOPIC))
    holders = corpus.collection(TOPIC).get(include=["metadatas"])["metadatas"] or []
    assert sorted(m[SOURCES_KEY] for m in holders if m.get(SOURCES_KEY) == ["a.txt", "b.txt"]) == [
        ["a.txt", "b.txt"]
    ], "one row, held by both files"
    # a.txt no longer holds the shared paragraph; b.txt did not change and is not in the input.
    result = corpus.sync(files([a_only], []), [TOPIC, FEELING], cleanup="incremental")
    assert result.deleted == {TOPIC: 0, FEELING: 0}
    for instruction in (TOPIC, FEELING):
        assert set(stored(corpus, instruction)) == ids_before, (
            "b.txt kept its paragraph under every instruction"
        )
        assert [hit.text for hit in corpus.search(SHARED, instruction, k=1)] == [SHARED]
    rows = corpus.collection(TOPIC).get(include=["documents", "metadatas"])
    shared = [
        meta
        for text, meta in zip(rows["documents"] or [], rows["metadatas"] or [], strict=True)
        if text == SHARED
    ]
    assert len(shared) == 1 and shared[0]["source"] == "b.txt", "the row now names the file that holds it"
    assert shared[0][SOURCES_KEY] == ["b.txt"]
    # When b.txt drops it too, it goes.
    result = corpus.sync(files([], [b_only]), [TOPIC, FEELING], cleanup="incremental")
    assert result.deleted == {TOPIC: 1, FEELING: 1}
    assert SHARED not in [hit.text for hit in corpus.search(SHARED, TOPIC, k=10)]


def test_rows_written_before_the_record_existed_are_cleaned_by_their_source_tag(chroma_client) -> None:
    corpus = InstructedCorpus(chroma_client, "legacy-sync", model_kwargs=FLOAT32, cache=False)
    corpus.sync(DOCS, [TOPIC])
    collection = corpus.collection(TOPIC)
    collection.update(ids=["a1", "a2", "b1"], metadatas=[{SOURCES_KEY: None}] * 3)  # as 0.1 wrote them
    assert corpus.sync(DOCS[:1], [TOPIC], cleanup="incremental").deleted == {TOPIC: 1}
    assert sorted(stored(corpus, TOPIC)) == ["a1", "b1"]


def test_the_same_id_with_other_metadata_in_one_batch_keeps_the_later(corpus: InstructedCorpus) -> None:
    first = {"text": "A repeated paragraph.", "id": "r", "metadata": {"source": "a", "v": 1}}
    later = {**first, "metadata": {"source": "a", "v": 2}}
    assert corpus.sync([first, later], [TOPIC]).written == {TOPIC: 1}
    assert stored(corpus, TOPIC)["r"] == {"source": "a", "v": 2}
    assert corpus.sync([later, first], [TOPIC]).updated == {TOPIC: 1}
    assert stored(corpus, TOPIC)["r"] == {"source": "a", "v": 1}, "the later one wins, in either order"


def test_deleting_an_id_twice_in_one_call_is_refused_naming_both(corpus: InstructedCorpus) -> None:
    with pytest.raises(InBedderError, match=r"ids\[0\] and ids\[1\] are both 'a2'"):
        corpus.delete(["a2", "a2"])
    assert sorted(stored(corpus, TOPIC)) == ["a1", "a2", "b1"], "nothing deleted"


def test_a_str_source_never_stands_for_another_value(chroma_client) -> None:
    """A str that reads like an encoded value ("json:5", "json:notes", "str:...") is its own source."""
    corpus = InstructedCorpus(chroma_client, "tokens", model_kwargs=FLOAT32, cache=False)
    sources = [5, "json:5", "str:json:5", True, 1.0, "json:notes", "json:"]
    rows = [{"text": f"Paragraph one of source {i}.", "id": f"{i}-1", "metadata": {"source": s}}
            for i, s in enumerate(sources)]  # fmt: skip
    corpus.sync(rows, [TOPIC])
    for i, row in enumerate(rows):  # each source alone gains a paragraph: no other source loses one
        later = {"text": f"Paragraph two of source {i}.", "id": f"{i}-2", "metadata": row["metadata"]}
        assert corpus.sync([row, later], [TOPIC], cleanup="incremental").deleted == {TOPIC: 0}
    assert len(stored(corpus, TOPIC)) == 2 * len(sources)
    # The str "json:5" drops its first paragraph: that one goes, the int 5 keeps both of its own.
    result = corpus.sync(
        [{**rows[1], "text": "Paragraph two of source 1.", "id": "1-2"}], [TOPIC], cleanup="incremental"
    )
    assert result.deleted == {TOPIC: 1} and "1-1" not in stored(corpus, TOPIC)
    assert {"0-1", "0-2", "2-1", "2-2"} <= set(stored(corpus, TOPIC))


def test_a_paragraph_held_by_the_int_5_and_the_str_json5_keeps_both_holders(chroma_client) -> None:
    corpus = InstructedCorpus(chroma_client, "two-fives", model_kwargs=FLOAT32, cache=False)
    both = [{"text": SHARED, "metadata": {"source": "json:5"}}, {"text": SHARED, "metadata": {"source": 5}}]
    corpus.sync(both, [TOPIC])
    other = {"text": "Something else entirely.", "metadata": {"source": "json:5"}}
    assert corpus.sync([other], [TOPIC], cleanup="incremental").deleted == {TOPIC: 0}
    (row,) = [meta for meta in stored(corpus, TOPIC).values() if meta["source"] != "json:5"]
    assert row == {"source": 5}, "re-tagged as the int's, type kept"


def test_cli_indexes_a_folder_holding_a_file_named_json_colon(tmp_path, capsys) -> None:
    """A file `json:notes.txt` is a source like any other: indexed, synced and cleaned on every rerun."""
    from inbedder_integrations.cli import main
    from inbedder_integrations.corpus import connect

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "json:notes.txt").write_text("The striker scored twice.", encoding="utf-8")
    (folder / "json:5.md").write_text("The bank raised rates.", encoding="utf-8")
    common = [
        "--name",
        "notes",
        "--instruction",
        TOPIC,
        "--path",
        str(tmp_path / "store"),
        "--dtype",
        "float32",
    ]
    main(["index", str(folder), *common, "--no-cache", "--cleanup", "incremental"])
    assert "2 written" in capsys.readouterr().out
    (folder / "json:notes.txt").write_text("The keeper saved a penalty.", encoding="utf-8")
    main(["index", str(folder), *common, "--no-cache", "--cleanup", "incremental"])
    said = capsys.readouterr().out
    assert "1 written, 0 metadata updated, 1 already there" in said and "0 deleted" in said
    corpus = InstructedCorpus(connect(tmp_path / "store"), "notes", model_kwargs=FLOAT32)
    assert stored(corpus, TOPIC) == {
        "json:notes.txt": {"source": "json:notes.txt"},
        "json:5.md": {"source": "json:5.md"},
    }
    (folder / "json:5.md").unlink()
    main(["index", str(folder), *common, "--no-cache", "--cleanup", "full"])
    assert "1 deleted" in capsys.readouterr().out
    assert [hit.metadata["source"] for hit in corpus.search("penalty", TOPIC)] == ["json:notes.txt"]


#: The record the code before the sources' encoding wrote: a str as itself, any other value as
#: "json:" and its JSON, under this key (so the str "json:5" and the int 5 shared a token).
LEGACY_KEY = "inbedder_sources"


def test_a_collection_written_in_the_earlier_encoding_syncs_on(chroma_client) -> None:
    corpus = InstructedCorpus(chroma_client, "legacy-tokens", model_kwargs=FLOAT32, cache=False)
    docs = [
        {"text": "The striker scored twice.", "id": "a1", "metadata": {"source": "a.txt"}},
        {"text": SHARED, "id": "shared", "metadata": {"source": "a.txt"}},
        {"text": SHARED, "id": "shared", "metadata": {"source": "b.txt"}},
        {"text": "The bank raised rates.", "id": "n1", "metadata": {"source": "json:notes.txt"}},
        {"text": "I lost my keys.", "id": "i1", "metadata": {"source": 5}},
        {"text": "A quiet afternoon.", "id": "s1", "metadata": {"source": "json:5"}},
    ]
    corpus.sync(docs, [TOPIC])
    collection = corpus.collection(TOPIC)
    legacy = {"a1": ["a.txt"], "shared": ["a.txt", "b.txt"], "n1": ["json:notes.txt"], "i1": ["json:5"],
              "s1": ["json:5"]}  # fmt: skip
    collection.update(
        ids=list(legacy), metadatas=[{SOURCES_KEY: None, LEGACY_KEY: tokens} for tokens in legacy.values()]
    )
    kept = ["a1", "shared", "n1", "i1"]
    vectors = corpus.embeddings(TOPIC, kept)
    sources = {hit.id: hit.metadata["source"] for hit in corpus.search("keys", TOPIC, k=10)}
    # a.txt drops the shared paragraph, the str "json:5" replaces its paragraph; 5 and json:notes.txt stay.
    later = {"text": "A loud evening.", "id": "s2", "metadata": {"source": "json:5"}}
    given = [docs[0], docs[3], docs[4], later]
    result = corpus.sync(given, [TOPIC], cleanup="incremental")
    assert (result.written, result.deleted) == ({TOPIC: 1}, {TOPIC: 1}), (
        "s2 embedded, s1 deleted, nothing else"
    )
    rows = collection.get(include=["metadatas"])
    metadata = dict(zip(rows["ids"], rows["metadatas"] or [], strict=True))
    assert sorted(metadata) == sorted([*kept, "s2"]), "no row lost, none twice"
    assert metadata["shared"]["source"] == "b.txt" and metadata["shared"][SOURCES_KEY] == ["b.txt"]
    assert metadata["i1"]["source"] == 5 and metadata["i1"][SOURCES_KEY] == ["json:5"]
    assert not [id_ for id_, meta in metadata.items() if LEGACY_KEY in meta], "every row it touched migrated"
    np.testing.assert_array_equal(corpus.embeddings(TOPIC, kept), vectors)
    after = {hit.id: hit.metadata["source"] for hit in corpus.search("keys", TOPIC, k=10)}
    assert after == {**{k: v for k, v in sources.items() if k != "s1"}, "shared": "b.txt", "s2": "json:5"}
    rerun = corpus.sync(given, [TOPIC], cleanup="incremental")
    assert (rerun.written, rerun.updated, rerun.deleted) == ({TOPIC: 0}, {TOPIC: 0}, {TOPIC: 0})


SCALARS = st.one_of(
    st.text(), st.sampled_from(["json:5", "json:", "str:", "str:json:1", "json:true", "json:notes"]),
    st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(SCALARS, min_size=2, max_size=2), st.text())
def test_tokens_round_trip_and_reading_any_stored_string_never_raises(values, stored_text) -> None:
    a, b = values
    assert source_value(source_token(a)) == a and type(source_value(source_token(a))) is type(a)
    same = (type(a), repr(a)) == (type(b), repr(b))
    assert (source_token(a) == source_token(b)) == same, "no two values share a token"
    for text in (stored_text, "json:" + stored_text, "str:" + stored_text, "json:" + "[" * 100_000):
        source_value(text), legacy_source(text, None), legacy_source(text, text)
    junk = {"inbedder_sources": [stored_text, 3, None], "source": [1]}
    assert recorded_tokens(junk, "source") == {source_token(legacy_source(stored_text, [1]))}, (
        "non-str skipped"
    )
    assert recorded_tokens({SOURCES_KEY: "x"}, "source") == {"x"}
