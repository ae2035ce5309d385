"""Retrievers that pick the question: LangChain's and LlamaIndex's over a real InstructedCorpus
(real Chroma, the real default model), with LangChain's standard retriever suite."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from langchain_core.language_models.fake import FakeListLLM
from langchain_tests.integration_tests import RetrieversIntegrationTests

from inbedder_integrations.corpus import InstructedCorpus, connect
from inbedder_integrations.langchain import InstructedRetriever
from inbedder_integrations.llama_index import InstructedRetriever as LlamaInstructedRetriever
from inbedder_integrations.routing import INSTRUCTION_METADATA_KEY, routed_search
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
    {"text": "Parliament passed the budget after a long debate.", "id": "budget"},
]
_CORPUS: dict[str, InstructedCorpus] = {}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> InstructedCorpus:
    built = InstructedCorpus(
        connect(tmp_path_factory.mktemp("routed")), "routed", model_kwargs=FLOAT32, cache=False
    )
    built.index(DOCS, [TOPIC, GOOD_OR_BAD])
    _CORPUS["corpus"] = built
    return built


def test_the_question_picks_the_collection_and_each_document_names_it(corpus: InstructedCorpus) -> None:
    retriever = InstructedRetriever(corpus=corpus, descriptions=DESCRIPTIONS, k=2)
    football = retriever.invoke("Which news is about football?")
    assert football[0].id == "football" and len(football) == 2
    assert {d.metadata[INSTRUCTION_METADATA_KEY] for d in football} == {TOPIC}
    good = retriever.invoke("Which news is good for the people involved?")
    assert {d.metadata[INSTRUCTION_METADATA_KEY] for d in good} == {GOOD_OR_BAD}
    # The same search as the chosen collection's own, scores and order included.
    direct = corpus.search("Which news is about football?", TOPIC, k=2)
    assert [d.id for d in football] == [hit.id for hit in direct]
    assert [d.metadata["score"] for d in football] == pytest.approx([hit.score for hit in direct])


def test_merging_across_instructions_keeps_each_document_once_at_its_best(corpus: InstructedCorpus) -> None:
    route, merged = routed_search(
        corpus, "Which news is about football?", k=5, descriptions=DESCRIPTIONS, top=2
    )
    assert sorted(hit.id for hit in merged) == sorted(d["id"] for d in DOCS), "each once"
    assert [hit.score for hit in merged] == sorted((hit.score for hit in merged), reverse=True)
    for hit in merged:
        own = {
            h.id: h.score
            for h in corpus.search(
                "Which news is about football?", hit.metadata[INSTRUCTION_METADATA_KEY], k=5
            )
        }
        other = GOOD_OR_BAD if hit.metadata[INSTRUCTION_METADATA_KEY] == TOPIC else TOPIC
        rival = {h.id: h.score for h in corpus.search("Which news is about football?", other, k=5)}
        assert own[hit.id] == pytest.approx(hit.score) and own[hit.id] >= rival[hit.id] - 1e-6
    assert route.ranked() == [route.instruction, *(q for q in DESCRIPTIONS if q != route.instruction)]


def test_an_llm_can_choose_and_a_wrong_choice_is_refused(corpus: InstructedCorpus) -> None:
    retriever = InstructedRetriever(
        corpus=corpus, descriptions=DESCRIPTIONS, llm=FakeListLLM(responses=["2"]), k=1
    )
    (document,) = retriever.invoke("Which news is about football?")
    assert document.metadata[INSTRUCTION_METADATA_KEY] == GOOD_OR_BAD, "the LLM's pick, not the embedding's"

    def nonsense(question: str, routes: Mapping[str, str]) -> str:
        return "Which colour is it?"

    with pytest.raises(ValueError, match="not one of"):
        routed_search(corpus, "x", descriptions=DESCRIPTIONS, choose=nonsense)


def test_llama_index_retriever(corpus: InstructedCorpus) -> None:
    retriever = LlamaInstructedRetriever(corpus, similarity_top_k=1, descriptions=DESCRIPTIONS)
    (node,) = retriever.retrieve("Which news is about football?")
    assert node.node.node_id == "football" and node.node.metadata[INSTRUCTION_METADATA_KEY] == TOPIC
    without_descriptions = LlamaInstructedRetriever(corpus, similarity_top_k=2)
    assert len(without_descriptions.retrieve("football")) == 2, "every indexed instruction, by its text"


class TestStandardRetriever(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _indexed(self, corpus: InstructedCorpus) -> None:
        pass

    @property
    def retriever_constructor(self) -> type[InstructedRetriever]:
        return InstructedRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"corpus": _CORPUS["corpus"], "descriptions": DESCRIPTIONS}

    @property
    def retriever_query_example(self) -> str:
        return "Which news is about football?"
