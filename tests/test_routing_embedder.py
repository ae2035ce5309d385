"""Routing asks its question through the corpus's own embedder (issue 36): a corpus that queries
through a real ``inbedder serve`` routes through that server and loads no engine here, and a
local corpus's routing vectors land in (and come from) the corpus's own cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.cache import EmbeddingCache
from inbedder_integrations.corpus import InstructedCorpus, connect
from inbedder_integrations.embedder import Embedder
from inbedder_integrations.errors import InvalidArgumentError, MissingError
from inbedder_integrations.routing import ROUTING_INSTRUCTION, route_question, routed_search

pytest.importorskip("fastapi", reason="the 'serve' extra is part of the test install")
from inbedder_integrations.serving import ServeConfig, ServedInstruction, serve_in_background
from tests.conftest import FLOAT32

TOPIC = "What is the topic of this news?"
GOOD_OR_BAD = "Is the news good or bad for the people involved?"
DESCRIPTIONS = {
    TOPIC: "the subject of the news: sport, business, politics, technology or entertainment",
    GOOD_OR_BAD: "whether the news is good or bad for people: success or failure, winning or losing",
}
DOCS = [
    {"text": "The striker scored twice and the home side won the cup final.", "id": "football"},
    {"text": "The bank collapsed and thousands of savers lost everything.", "id": "bank"},
    {"text": "The new phone has a faster chip and a brighter screen.", "id": "phone"},
    {"text": "The family won the lottery and paid off their house.", "id": "lottery"},
]
QUESTIONS = ["Which news is about football?", "Which news is good for the people involved?"]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A real server on 127.0.0.1 serving both collections' instructions and the routing one."""
    served = (
        ServedInstruction("topic", TOPIC),
        ServedInstruction("mood", GOOD_OR_BAD),
        ServedInstruction("route", ROUTING_INSTRUCTION),
    )
    engine = InBedder.from_pretrained("default", dtype="float32", cache=False)
    with serve_in_background(ServeConfig(served, port=0, cache=False), engine) as running:
        yield running.url


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("routed-store")
    InstructedCorpus(connect(path), "news", model_kwargs=FLOAT32, cache=False).index(
        DOCS, [TOPIC, GOOD_OR_BAD]
    )
    return path


def test_a_served_corpus_routes_through_its_server_and_loads_no_engine(
    server: str, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = InstructedCorpus(connect(store), "news", model_kwargs=FLOAT32, cache=False)
    expected = [routed_search(local, q, k=2, descriptions=DESCRIPTIONS) for q in QUESTIONS]

    def no_engine(*args: object, **kwargs: object) -> InBedder:
        raise AssertionError(f"routing through a server loaded an engine here: {args} {kwargs}")

    # A guard, not a stand-in: any engine built from here on fails the test.
    monkeypatch.setattr(InBedder, "from_pretrained", no_engine)
    served = InstructedCorpus(connect(store), "news", model_kwargs=FLOAT32, query_server=server)
    for question, (route, hits) in zip(QUESTIONS, expected, strict=True):
        got_route, got_hits = routed_search(served, question, k=2, descriptions=DESCRIPTIONS)
        assert got_route.instruction == route.instruction
        assert got_route.scores == pytest.approx(route.scores, abs=1e-5), "the same vectors, from the server"
        assert [hit.id for hit in got_hits] == [hit.id for hit in hits]
        assert [hit.score for hit in got_hits] == pytest.approx([hit.score for hit in hits], abs=1e-5)
    routing = served.embedder(ROUTING_INSTRUCTION)
    assert isinstance(routing, Embedder) and routing.source.startswith(server)  # type: ignore[attr-defined]
    assert served.embedder(ROUTING_INSTRUCTION) is routing, "the corpus keeps its embedder"


def test_a_server_without_the_routing_instruction_is_named(store: Path) -> None:
    engine = InBedder.from_pretrained("default", dtype="float32", cache=False)
    config = ServeConfig((ServedInstruction("topic", TOPIC),), port=0, cache=False)
    with serve_in_background(config, engine) as running:
        served = InstructedCorpus(connect(store), "news", query_server=running.url)
        with pytest.raises(
            MissingError, match=r"serves no name for 'What is this text about\?'.*--instruction"
        ):
            routed_search(served, QUESTIONS[0], descriptions=DESCRIPTIONS)


def test_a_local_corpus_routes_through_its_own_cache(tmp_path: Path) -> None:
    cache = tmp_path / "corpus-cache.sqlite"
    corpus = InstructedCorpus(connect(tmp_path / "store"), "cached", model_kwargs=FLOAT32, cache=cache)
    corpus.index(DOCS, [TOPIC, GOOD_OR_BAD])
    route, _ = routed_search(corpus, QUESTIONS[0], k=2, descriptions=DESCRIPTIONS)
    routing = corpus.embedder(ROUTING_INSTRUCTION)
    texts = [QUESTIONS[0], *DESCRIPTIONS.values()]
    stored = EmbeddingCache(cache).get_many(routing.cache_key, ROUTING_INSTRUCTION, texts)
    assert all(vector is not None for vector in stored), "routing's vectors are in the corpus's cache"
    # And they are what routing used: the cached rows give the same scores.
    rows = np.stack([vector / np.linalg.norm(vector) for vector in stored if vector is not None])
    assert [float(s) for s in rows[1:] @ rows[0]] == pytest.approx(list(route.scores.values()), abs=1e-5)


def test_route_question_takes_an_embedder_bound_to_the_routing_instruction(
    engine: InBedder, tmp_path: Path
) -> None:
    corpus = InstructedCorpus(connect(tmp_path), "bound", model_kwargs=FLOAT32, cache=False)
    through_embedder = route_question(corpus.embedder(ROUTING_INSTRUCTION), QUESTIONS[1], DESCRIPTIONS)
    through_engine = route_question(engine, QUESTIONS[1], DESCRIPTIONS)
    assert through_embedder.instruction == through_engine.instruction == GOOD_OR_BAD
    assert through_embedder.scores == pytest.approx(through_engine.scores, abs=1e-5)
    with pytest.raises(InvalidArgumentError, match="not the routing instruction"):
        route_question(corpus.embedder(TOPIC), QUESTIONS[1], DESCRIPTIONS)
