"""The RAG recipes, run for real: BBC News in Chroma, the default model, a local generator."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from inbedder_integrations.rag import ROUTING_INSTRUCTION, format_sources, generator_path, route_question
from tests.conftest import RECIPES, load_recipe

COMMON = load_recipe("_rag_common")
"""recipes/_rag_common.py: the routes, questions and sample both RAG recipes use."""
EXAMPLE_INSTRUCTIONS, EXAMPLE_QUESTIONS, EXAMPLE_ROUTES = (
    COMMON.EXAMPLE_INSTRUCTIONS,
    COMMON.EXAMPLE_QUESTIONS,
    COMMON.EXAMPLE_ROUTES,
)
TOPIC, GOOD_OR_BAD = EXAMPLE_INSTRUCTIONS


TOPIC_QUESTIONS = [
    "Which news is about football?",
    "Find articles about technology",
    "What stories cover the election?",
    "Which articles discuss the music industry?",
    "Any news on the stock market?",
    "What happened in the film world?",
]
GOOD_OR_BAD_QUESTIONS = [
    "Which news is good for the people involved?",
    "Show me some good news",
    "Which stories are bad news for the people in them?",
    "Where did something go badly wrong for someone?",
    "Who had a success or a happy ending?",
    "Find stories where people lost out",
]


def test_routing_sends_questions_to_the_fitting_instruction(engine):
    for question, instruction in zip(EXAMPLE_QUESTIONS, EXAMPLE_INSTRUCTIONS, strict=True):
        route = route_question(engine, question, EXAMPLE_ROUTES)
        assert route.instruction == instruction, route.scores
        assert set(route.scores) == set(EXAMPLE_INSTRUCTIONS)
    routed = [route_question(engine, q, EXAMPLE_ROUTES).instruction for q in TOPIC_QUESTIONS]
    routed_good_or_bad = [
        route_question(engine, q, EXAMPLE_ROUTES).instruction for q in GOOD_OR_BAD_QUESTIONS
    ]
    correct = routed.count(TOPIC) + routed_good_or_bad.count(GOOD_OR_BAD)
    # 12 questions, 2 routes: chance is 6. The previous default routed 10+, the retrained one 9.
    assert correct >= 9, (routed, routed_good_or_bad)
    # A bare list routes by the instruction texts: the scores are the cosines the
    # engine gives the question and each text under the routing instruction.
    question = "Which news is about football?"
    bare = route_question(engine, question, list(EXAMPLE_INSTRUCTIONS))
    vectors = engine.embed([question, *EXAMPLE_INSTRUCTIONS], ROUTING_INSTRUCTION)
    expected = dict(zip(EXAMPLE_INSTRUCTIONS, (vectors[1:] @ vectors[0]).tolist(), strict=True))
    assert bare.scores == pytest.approx(expected, abs=1e-5)
    assert bare.instruction == max(expected, key=expected.__getitem__)
    with pytest.raises(TypeError, match="non-empty mapping"):
        route_question(engine, "q", TOPIC)
    with pytest.raises(ValueError, match="description of"):
        route_question(engine, "q", {TOPIC: " "})


class PointingEngine:
    """Each text embeds to a fixed unit vector: routing checked by hand, without a model."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = {text: np.asarray(v) / np.linalg.norm(v) for text, v in vectors.items()}
        self.instructions: list[str] = []

    def embed(self, texts: list[str], instruction: str) -> np.ndarray:
        self.instructions.append(instruction)
        return np.stack([self.vectors[text] for text in texts])


def test_routing_by_hand():
    # The question points along x.  The descriptions decide, not the instruction
    # texts: "A" reads as near the question, but its description points away.
    engine = PointingEngine(
        {"q": [1, 0], "A": [1, 0], "B": [0, 1], "about a": [0, 1], "about b": [3, 4], "tie": [3, 4]}
    )
    routed = route_question(engine, "q", {"A": "about a", "B": "about b"})
    assert routed.instruction == "B"
    assert routed.scores == pytest.approx({"A": 0.0, "B": 0.6})
    assert engine.instructions == [ROUTING_INSTRUCTION]
    bare = route_question(engine, "q", ["B", "A"], routing_instruction="Which topic?")
    assert bare.instruction == "A" and bare.scores == pytest.approx({"B": 0.0, "A": 1.0})
    assert engine.instructions[-1] == "Which topic?"
    tied = route_question(engine, "q", {"B": "about b", "A": "tie"})
    assert tied.instruction == "B", "a tie goes to the first route"


def test_sources_are_numbered_and_cut():
    text = format_sources(["short one", "a  much\nlonger text " * 20], max_chars=20)
    first, second = text.splitlines()
    assert first == "[1] short one"
    assert second.startswith("[2] a much longer text") and second.endswith("...")
    assert len(second) == len("[2] ") + 20 + 3


def test_default_generator_is_the_untuned_chat_model():
    folder = Path(generator_path("default"))
    assert (folder / "config.json").is_file() and (folder / "tokenizer_config.json").is_file()
    assert (
        "chat_template" in (folder / "tokenizer_config.json").read_text()
        or (folder / "chat_template.jinja").is_file()
    )
    assert not (folder / "adapter_config.json").exists()


def load_rag_recipe(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A RAG recipe, with ``recipes/`` on the path as when it runs: it imports ``_rag_common``."""
    monkeypatch.syspath_prepend(str(RECIPES))
    return load_recipe(name)


@pytest.mark.slow
def test_langchain_recipe_routes_retrieves_and_answers(tmp_path, monkeypatch):
    recipe = load_rag_recipe("rag_langchain", monkeypatch)
    results = recipe.run(list(EXAMPLE_QUESTIONS), store=str(tmp_path / "chroma"), limit=10)
    assert [r["instruction"] for r in results] == list(EXAMPLE_INSTRUCTIONS)
    football = results[0]
    assert len(football["documents"]) == 3
    assert football["documents"][0].metadata["label"] == "sports"
    assert football["sources"].startswith("[1] ")
    for result in results:
        assert result["answer"].strip(), "the generator answered"
    explicit = recipe.run(
        [EXAMPLE_QUESTIONS[0]], store=str(tmp_path / "chroma"), limit=10, instruction=GOOD_OR_BAD
    )
    assert explicit[0]["instruction"] == GOOD_OR_BAD
    with pytest.raises(LookupError, match="no collection for"):
        recipe.run(["q"], store=str(tmp_path / "chroma"), limit=10, instruction="Who wrote it?")


@pytest.mark.slow
def test_llamaindex_recipe_routes_retrieves_and_answers(tmp_path, monkeypatch):
    recipe = load_rag_recipe("rag_llamaindex", monkeypatch)
    results = recipe.run(list(EXAMPLE_QUESTIONS), store=str(tmp_path / "chroma"), limit=10)
    assert [r["instruction"] for r in results] == list(EXAMPLE_INSTRUCTIONS)
    football = results[0]["response"]
    assert str(football).strip(), "the generator answered"
    assert football.source_nodes and football.source_nodes[0].node.metadata["label"] == "sports"
    assert football.source_nodes[0].node.get_content().startswith("Source 1:")
