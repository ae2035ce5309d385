"""Bad input, property-based (hypothesis), through the engine and every adapter.

Every valid text (control characters, emoji, right-to-left, zero-width, empty,
whitespace-only, the tokenizer's special tokens, the template's own markers)
gives a finite, unit-norm vector in its own row; every bad item (None, numbers,
bytes, nested lists, dicts, lone surrogates) fails its whole batch with an error
naming its index, and nothing reaches Chroma.  Set ``INBEDDER_RELIABILITY_COUNTS``
to a file name to get how many examples of each category were tried.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbedder_integrations import InBedder
from inbedder_integrations.chroma import InBedderEmbeddingFunction, open_collection
from inbedder_integrations.corpus import InstructedCorpus
from inbedder_integrations.engine.prompting import PromptTokenizer
from inbedder_integrations.langchain import InBedderEmbeddings
from inbedder_integrations.llama_index import InBedderEmbedding
from tests.conftest import FLOAT32

TOPIC = "What is the topic of this text?"
FEELING = "How does the writer feel?"
KNOWN_A = "The striker scored twice and the home side won the cup final."
KNOWN_B = "The central bank raised interest rates to fight inflation."
SAME = 0.9999
"""Cosine above which two vectors count as the same vector (fp32, padding differs)."""

# --------------------------------------------------------------------------- counts

COUNTS: Counter[tuple[str, str]] = Counter()
"""(kind, category) -> examples tried, across every test of this module."""


@pytest.fixture(scope="module", autouse=True)
def record_counts() -> Iterator[None]:
    """Writes COUNTS as JSON to $INBEDDER_RELIABILITY_COUNTS (if set) once the module is done."""
    yield
    target = os.environ.get("INBEDDER_RELIABILITY_COUNTS")
    if not target:
        return
    grouped: dict[str, dict[str, int]] = {}
    for (kind, category), count in sorted(COUNTS.items()):
        grouped.setdefault(kind, {})[category] = count
    report = {"examples": grouped, "total": sum(COUNTS.values())}
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def examples(count: int) -> settings:
    """Hypothesis settings for tests that run the real model: few examples, no deadline."""
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# --------------------------------------------------------------------------- strategies

TEMPLATE_MARKERS = [
    "### Response:",
    "### Instruction:",
    "### Input:",
    "\n\n### Response:",
    "\n\n### Instruction:\n",
    "{input}",
    "{instruction}",
    "{}",
    "{0}",
]
OTHER_MODELS_SPECIAL_TOKENS = ["<s>", "</s>", "<mask>", "<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
CONTROL = st.characters(categories=["Cc"])  # C0, DEL and C1 controls, NUL included
WHITESPACE = st.characters(categories=["Zs", "Zl", "Zp"]) | st.sampled_from("\t\n\r\x0b\x0c\x1c\x1f\x85")
ZERO_WIDTH = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e"])
BIDI_MARKS = st.sampled_from(
    ["\u200e", "\u200f", "\u061c", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]
)
RTL = (
    st.characters(min_codepoint=0x0590, max_codepoint=0x05FF)  # Hebrew
    | st.characters(min_codepoint=0x0600, max_codepoint=0x06FF)  # Arabic
    | st.characters(min_codepoint=0xFB1D, max_codepoint=0xFDFF)  # presentation forms
    | BIDI_MARKS
)
EMOJI = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF) | st.sampled_from(
    ["👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🇮🇱", "🇸🇦", "❤️", "🏳️\u200d🌈", "1️⃣", "\U000e0067"]
)


def containing(pieces: st.SearchStrategy[str], max_size: int = 60) -> st.SearchStrategy[str]:
    """Unicode text with at least one of ``pieces`` in it, at most ``max_size`` characters."""
    rest = st.lists(st.one_of(pieces, st.text(max_size=8)), max_size=4).map("".join)
    return st.tuples(st.text(max_size=20), pieces, rest).map(lambda parts: "".join(parts)[:max_size])


def joined(pieces: st.SearchStrategy[str], min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Pieces (characters or multi-character sequences such as emoji with modifiers) joined."""
    return st.lists(pieces, min_size=min_size, max_size=max_size).map("".join)


def tagged(category: str, strategy: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
    return strategy.map(lambda text: (category, text))


@lru_cache(maxsize=4)
def valid_texts(special_tokens: tuple[str, ...], blank: bool = True) -> st.SearchStrategy[tuple[str, str]]:
    """(category, text) for every kind of valid text; ``blank=False`` leaves out empty/whitespace."""
    specials = st.sampled_from([*special_tokens, *OTHER_MODELS_SPECIAL_TOKENS])
    everything = st.one_of(CONTROL, WHITESPACE, ZERO_WIDTH, RTL, EMOJI, st.characters())
    branches = [
        tagged("control characters", containing(st.text(CONTROL, min_size=1, max_size=6))),
        tagged("emoji", containing(joined(EMOJI, 1, 6))),
        tagged("right-to-left", containing(st.text(RTL, min_size=1, max_size=30))),
        tagged("zero-width", containing(st.text(ZERO_WIDTH, min_size=1, max_size=6))),
        tagged("special tokens", containing(specials)),
        tagged("template markers", containing(st.sampled_from(TEMPLATE_MARKERS))),
        tagged("random unicode", st.text(max_size=60)),
        tagged("mixed", joined(everything, 0, 60).map(lambda text: text[:60])),
    ]
    if blank:
        branches += [
            st.just(("empty", "")),
            tagged("whitespace-only", st.text(WHITESPACE, min_size=1, max_size=20)),
        ]
    return st.one_of(branches)


def lone_surrogates() -> st.SearchStrategy[str]:
    """A ``str`` with an unpaired surrogate (what ``errors='surrogateescape'`` decoding leaves)."""
    return st.tuples(st.text(max_size=15), st.characters(categories=["Cs"]), st.text(max_size=15)).map(
        "".join
    )


NESTED = st.recursive(
    st.text(max_size=5) | st.integers(),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner),
    max_leaves=6,
).filter(lambda value: isinstance(value, (list, tuple)))
BAD_ITEMS: st.SearchStrategy[tuple[str, Any]] = st.one_of(
    st.just(("None", None)),
    st.tuples(st.just("int"), st.integers() | st.booleans()),
    st.tuples(st.just("float"), st.floats()),  # nan and inf included
    st.tuples(st.just("bytes"), st.binary(max_size=20) | st.binary(max_size=5).map(bytearray)),
    st.tuples(st.just("nested list"), NESTED),
    st.tuples(
        st.just("dict"),
        st.dictionaries(
            st.text(max_size=5).filter(lambda key: key != "text"), st.text(max_size=5), max_size=3
        ),
    ),
    st.tuples(st.just("lone surrogate"), lone_surrogates()),
)
"""(category, item) for items that are not valid texts."""


# --------------------------------------------------------------------------- checks


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def checked_matrix(vectors: Any, rows: int, dim: int, element: type | tuple[type, ...]) -> np.ndarray:
    """``vectors`` as a (rows, dim) array, checked finite, unit-norm and of ``element`` type(s)."""
    matrix = np.asarray(vectors)
    assert matrix.shape == (rows, dim)
    if element is float:  # LangChain and LlamaIndex want plain Python floats
        assert all(type(value) is float for row in vectors for value in row)
    else:
        assert matrix.dtype.type in (element if isinstance(element, tuple) else (element,))
    assert np.isfinite(matrix).all()
    np.testing.assert_allclose(np.linalg.norm(matrix.astype(np.float64), axis=1), 1.0, atol=1e-5)
    return matrix.astype(np.float32)


@dataclass(frozen=True)
class Route:
    """One way in: a batch of documents and a single query, under TOPIC."""

    batch: Callable[[Any], Any]
    one: Callable[[Any], Any]
    element: type


@pytest.fixture(scope="module")
def routes(engine: InBedder) -> dict[str, Route]:
    langchain = InBedderEmbeddings(instruction=TOPIC, model_kwargs=FLOAT32)
    llama = InBedderEmbedding(instruction=TOPIC, model_kwargs=FLOAT32)
    function = InBedderEmbeddingFunction(TOPIC, model_kwargs=FLOAT32)
    return {
        "engine": Route(
            lambda texts: engine.embed(texts, TOPIC), lambda text: engine.embed([text], TOPIC)[0], np.float32
        ),
        "engine.embed_many": Route(
            lambda texts: engine.embed_many(texts, [FEELING, TOPIC])[TOPIC],
            lambda text: engine.embed([text], TOPIC)[0],
            np.float32,
        ),
        "langchain": Route(langchain.embed_documents, langchain.embed_query, float),
        "langchain.async": Route(
            lambda texts: asyncio.run(langchain.aembed_documents(texts)),
            lambda text: asyncio.run(langchain.aembed_query(text)),
            float,
        ),
        "llama_index": Route(llama.get_text_embedding_batch, llama.get_query_embedding, float),
        "llama_index.async": Route(
            lambda texts: asyncio.run(llama.aget_text_embedding_batch(texts)),
            lambda text: asyncio.run(llama.aget_query_embedding(text)),
            float,
        ),
        "chroma_function": Route(function, lambda text: function.embed_query([text])[0], np.float32),
    }


@pytest.fixture(scope="module")
def references(engine: InBedder) -> np.ndarray:
    return engine.embed([KNOWN_A, KNOWN_B], TOPIC)


@pytest.fixture(scope="module")
def special_tokens(engine: InBedder) -> tuple[str, ...]:
    tokens = tuple(engine.tokenizer.all_special_tokens)
    assert tokens, "the default tokenizer has special tokens: the strategy must use them"
    return tokens


@pytest.fixture(scope="module")
def embedded_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return chromadb.PersistentClient(path=str(tmp_path_factory.mktemp("bad-input-chroma")))


# --------------------------------------------------------------------------- valid texts


def check_row_positions(vectors: np.ndarray, alone: Any, references: np.ndarray) -> None:
    """Rows 0 and 2 are KNOWN_A and KNOWN_B, row 1 is the generated text's own vector."""
    assert cosine(vectors[0], references[0]) >= SAME
    assert cosine(vectors[2], references[1]) >= SAME
    assert cosine(vectors[1], alone) >= SAME


@pytest.mark.slow
@pytest.mark.parametrize(
    ("route", "count"),
    [
        ("engine", 25),
        ("engine.embed_many", 6),
        ("langchain", 8),
        ("llama_index", 8),
        ("llama_index.async", 3),
        ("chroma_function", 8),
    ],
)
def test_valid_text_gives_a_unit_vector_in_its_own_row(
    engine: InBedder,
    routes: dict[str, Route],
    references: np.ndarray,
    special_tokens: tuple[str, ...],
    route: str,
    count: int,
) -> None:
    @examples(count)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        category, text = data.draw(valid_texts(special_tokens), label="text")
        COUNTS["valid text", category] += 1
        way = routes[route]
        vectors = checked_matrix(way.batch([KNOWN_A, text, KNOWN_B]), 3, engine.dim, way.element)
        alone = checked_matrix([way.one(text)], 1, engine.dim, way.element)[0]
        check_row_positions(vectors, alone, references)

    check()


@pytest.mark.slow
@examples(8)
@given(data=st.data())
def test_valid_text_stored_through_a_chroma_collection(
    engine: InBedder,
    embedded_client: Any,
    references: np.ndarray,
    special_tokens: tuple[str, ...],
    data: st.DataObject,
) -> None:
    category, text = data.draw(valid_texts(special_tokens), label="text")
    COUNTS["valid text", category] += 1
    collection = open_collection(embedded_client, "valid-texts", instruction=TOPIC, model_kwargs=FLOAT32)
    before = collection.count()
    ids = [f"{before}-a", f"{before}-x", f"{before}-b"]
    collection.add(ids=ids, documents=[KNOWN_A, text, KNOWN_B])
    assert collection.count() == before + 3
    stored = collection.get(ids=ids, include=["embeddings", "documents"])
    by_id = dict(zip(stored["ids"], zip(stored["documents"], stored["embeddings"], strict=True), strict=True))
    assert by_id[ids[1]][0] == text, "Chroma must store the text unchanged"
    stored_vectors = np.stack([by_id[id_][1] for id_ in ids])  # Chroma hands float32 back as float64
    vectors = checked_matrix(stored_vectors, 3, engine.dim, (np.float32, np.float64))
    check_row_positions(vectors, engine.embed([text], TOPIC)[0], references)


ONE_MB = 1_000_000


def one_megabyte(unit: str) -> str:
    """``unit`` repeated to just over 1 MB of UTF-8."""
    return unit * (ONE_MB // len(unit.encode("utf-8")) + 1)


@pytest.mark.parametrize(
    ("unit", "among_others"),
    [
        (
            "Scored twice 👍🏽 שלום עולם مرحبا\u200b\x07\x00 <|im_start|> ### Response: {input}\n",
            True,
        ),
        ("a", False),  # one 1 MB "word": no pre-tokenizer split to help
        (" ", False),  # 1 MB of whitespace
    ],
    ids=["mixed", "one-word", "whitespace"],
)
def test_one_megabyte_text_is_truncated_quickly(
    engine: InBedder, references: np.ndarray, unit: str, among_others: bool
) -> None:
    text = one_megabyte(unit)
    assert len(text.encode("utf-8")) >= ONE_MB
    COUNTS["valid text", "1 MB text"] += 1
    prompts = PromptTokenizer(engine.tokenizer, engine.template, engine.max_length)
    start = time.process_time()  # CPU time: other jobs on the machine do not count
    ids = prompts.encode(text, TOPIC)
    tokenising = time.process_time() - start
    assert len(ids) <= engine.max_length, "only max_length tokens may reach the model"
    assert tokenising < 5, f"tokenising 1 MB took {tokenising:.1f}s of CPU"
    # Only the beginning survives truncation: the first 100 kB give the very same vector.
    prefix = engine.embed([text[:100_000]], TOPIC)[0]
    if among_others:
        vectors = checked_matrix(engine.embed([KNOWN_A, text, KNOWN_B], TOPIC), 3, engine.dim, np.float32)
        check_row_positions(vectors, prefix, references)
    else:
        vector = checked_matrix(engine.embed([text], TOPIC), 1, engine.dim, np.float32)[0]
        assert cosine(vector, prefix) >= SAME


# --------------------------------------------------------------------------- bad items


def with_bad_item(data: st.DataObject, max_good: int = 40) -> tuple[str, list[Any], int, Any]:
    """(category, batch, index, item): valid texts with one bad item at a random index."""
    category, bad = data.draw(BAD_ITEMS, label="bad item")
    good = data.draw(st.lists(st.text(max_size=20), max_size=max_good), label="good texts")
    index = data.draw(st.integers(0, len(good)), label="index")
    return category, [*good[:index], bad, *good[index:]], index, bad


def assert_names_index(error: BaseException, argument: str, index: int) -> None:
    message = str(error)
    assert f"{argument}[{index}] " in message, message


@pytest.mark.parametrize(
    "route",
    [
        "engine",
        "engine.embed_many",
        "langchain",
        "langchain.async",
        "llama_index",
        "llama_index.async",
        "chroma_function",
    ],
)
@examples(30)
@given(data=st.data())
def test_one_bad_item_fails_the_whole_batch_naming_its_index(
    routes: dict[str, Route], route: str, data: st.DataObject
) -> None:
    # 40 good texts exceed LlamaIndex's embed_batch_size (16): the index must still be the caller's.
    category, batch, index, _ = with_bad_item(data)
    COUNTS["bad item", category] += 1
    with pytest.raises((TypeError, ValueError)) as error:
        routes[route].batch(batch)
    assert_names_index(error.value, "texts", index)


@pytest.mark.parametrize("route", ["engine", "langchain", "llama_index", "chroma_function"])
@examples(10)
@given(data=st.data())
def test_bad_single_query_is_a_clear_error(routes: dict[str, Route], route: str, data: st.DataObject) -> None:
    category, bad = data.draw(BAD_ITEMS, label="query")
    COUNTS["bad query", category] += 1
    with pytest.raises((TypeError, ValueError)) as error:
        routes[route].one(bad)
    message = str(error.value)
    assert "query" in message or "texts[0] " in message, message
    if category != "lone surrogate":
        assert type(bad).__name__ in message, message


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (None, "got NoneType"),
        (7, "got int"),
        (2.5, "got float"),
        (b"raw bytes", "got bytes"),
        (bytearray(b"raw"), "got bytearray"),
        ("a single string", "wrap it in a list"),
        ({"text": "a dict"}, "got dict"),
    ],
)
@pytest.mark.parametrize("route", ["engine", "langchain", "llama_index", "chroma_function"])
def test_texts_that_are_not_a_list_are_a_clear_error(
    routes: dict[str, Route], route: str, texts: Any, message: str
) -> None:
    COUNTS["texts argument not a list", type(texts).__name__] += 1
    with pytest.raises(TypeError, match="texts must be a list of strings") as error:
        routes[route].batch(texts)
    assert message in str(error.value)


@pytest.fixture
def seeded_collection(chroma_client: Any) -> Any:
    collection = open_collection(chroma_client, "bad-input", instruction=TOPIC, model_kwargs=FLOAT32)
    collection.add(ids=["a", "b"], documents=[KNOWN_A, KNOWN_B])
    return collection


@examples(12)
@given(data=st.data())
def test_bad_item_in_collection_add_writes_nothing(seeded_collection: Any, data: st.DataObject) -> None:
    category, batch, index, bad = with_bad_item(data, max_good=10)
    COUNTS["bad item in collection.add", category] += 1
    ids = [f"new-{i}" for i in range(len(batch))]
    with pytest.raises((TypeError, ValueError)) as error:
        seeded_collection.add(ids=ids, documents=batch)
    message = str(error.value)
    names_index = re.search(rf"\b(texts|documents)\[{index}\] ", message) is not None
    if isinstance(bad, str):  # a lone surrogate passes Chroma's type check and reaches our code
        assert names_index, message
    else:  # Chroma checks types before any embedding function runs: it names the value, not the index
        assert names_index or f"got {bad}" in message, message
    assert seeded_collection.count() == 2
    assert seeded_collection.get(ids=ids)["ids"] == []


@pytest.fixture
def seeded_corpus(chroma_client: Any) -> tuple[InstructedCorpus, Any]:
    corpus = InstructedCorpus(chroma_client, "bad-corpus", model_kwargs=FLOAT32, cache=False)
    assert corpus.index([KNOWN_A, KNOWN_B], [TOPIC]) == {TOPIC: 2}
    return corpus, corpus.collection(TOPIC)


@examples(12)
@given(data=st.data())
def test_bad_document_in_corpus_index_writes_nothing(
    seeded_corpus: tuple[InstructedCorpus, Any], data: st.DataObject
) -> None:
    corpus, collection = seeded_corpus
    category, batch, index, _ = with_bad_item(data, max_good=10)
    COUNTS["bad item in InstructedCorpus.index", category] += 1
    with pytest.raises((TypeError, ValueError)) as error:
        corpus.index(batch, [TOPIC, FEELING])
    assert f"documents[{index}]" in str(error.value), str(error.value)
    assert collection.count() == 2
    assert corpus.instructions() == [TOPIC], "no collection may be created for FEELING"


# --------------------------------------------------------------------------- instructions


@pytest.mark.slow
@examples(10)
@given(data=st.data())
def test_any_non_blank_instruction_works(
    engine: InBedder, special_tokens: tuple[str, ...], data: st.DataObject
) -> None:
    category, instruction = data.draw(
        valid_texts(special_tokens, blank=False).filter(lambda pair: pair[1].strip() and pair[1] != TOPIC),
        label="instruction",
    )
    COUNTS["valid instruction", category] += 1
    vectors = checked_matrix(engine.embed([KNOWN_A, KNOWN_B], instruction), 2, engine.dim, np.float32)
    # The shared-prefix path of embed_many gives the same vectors as separate passes.
    shared = engine.embed_many([KNOWN_A, KNOWN_B], [TOPIC, instruction])
    assert cosine(shared[instruction][0], vectors[0]) >= SAME
    assert cosine(shared[instruction][1], vectors[1]) >= SAME
    assert InBedderEmbeddings(instruction=instruction, model_kwargs=FLOAT32).instruction == instruction
    assert InBedderEmbedding(instruction=instruction, model_kwargs=FLOAT32).instruction == instruction
    function = InBedderEmbeddingFunction(instruction, model_kwargs=FLOAT32)
    assert function.get_config()["instruction"] == instruction


BAD_INSTRUCTIONS: st.SearchStrategy[tuple[str, Any]] = st.one_of(
    st.just(("empty", "")),
    st.tuples(st.just("whitespace-only"), st.text(WHITESPACE, min_size=1, max_size=10)),
    BAD_ITEMS,
)


@pytest.mark.parametrize(
    ("route", "argument"),
    [
        ("engine", "instruction"),
        ("engine.embed_many", "instructions[1]"),
        ("langchain", "instruction"),
        ("llama_index", "instruction"),
        ("chroma_function", "instruction"),
        ("open_collection", "instruction"),
        ("corpus", "instructions[1]"),
    ],
)
@examples(15)
@given(data=st.data())
def test_bad_instruction_is_a_clear_error(
    engine: InBedder, embedded_client: Any, route: str, argument: str, data: st.DataObject
) -> None:
    category, bad = data.draw(BAD_INSTRUCTIONS, label="instruction")
    COUNTS["bad instruction", category] += 1
    calls: dict[str, Callable[[], Any]] = {
        "engine": lambda: engine.embed([KNOWN_A], bad),
        "engine.embed_many": lambda: engine.embed_many([KNOWN_A], [TOPIC, bad]),
        "langchain": lambda: InBedderEmbeddings(instruction=bad, model_kwargs=FLOAT32),
        "llama_index": lambda: InBedderEmbedding(instruction=bad, model_kwargs=FLOAT32),
        "chroma_function": lambda: InBedderEmbeddingFunction(bad, model_kwargs=FLOAT32),
        "open_collection": lambda: open_collection(
            embedded_client, "bad-instruction", instruction=bad, model_kwargs=FLOAT32
        ),
        "corpus": lambda: InstructedCorpus(
            embedded_client, "bad-instruction-corpus", model_kwargs=FLOAT32, cache=False
        ).index([KNOWN_A], [TOPIC, bad]),
    }
    with pytest.raises((TypeError, ValueError)) as error:  # pydantic's ValidationError is a ValueError
        calls[route]()
    message = str(error.value)
    assert argument in message, message
    # None is "not given" wherever a server can supply the instruction: "is required" says so.
    not_given = bad is None and route in ("open_collection", "langchain", "llama_index", "chroma_function")
    if not isinstance(bad, str) and not not_given:
        assert type(bad).__name__ in message, message
    if not_given and route != "open_collection":
        assert "instruction is required" in message, message
    names = [collection.name for collection in embedded_client.list_collections()]
    assert not any(name.startswith("bad-instruction") for name in names), "nothing may be created"
