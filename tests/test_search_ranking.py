"""Search with queries that are not in the corpus: the store's ranking against an independent one.

The other search tests look a stored document up with itself as the query, which any
embedding passes.  Here the expected order comes from ``engine.embed`` and numpy cosines,
and one query is chosen so that the instruction decides which documents come first.
"""

from __future__ import annotations

import chromadb
import numpy as np
import pytest

from inbedder_integrations.corpus import InstructedCorpus
from tests.conftest import FLOAT32

TOPIC = "What is the topic of the news?"
COUNTRY = "Which country is the news about?"
DOCS = [
    "Germany's football team won the World Cup final in Berlin.",
    "Japan's central bank cut interest rates to support the economy.",
    "Brazil's striker was injured and will miss the rest of the season.",
    "Germany's car makers reported record profits this year.",
    "A tsunami destroyed thousands of homes on the coast of Japan.",
]
FLOODS = "Floods in Germany left thousands homeless."
FOOTBALL = "Japan beat Brazil two-nil in a thrilling football match."


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, engine) -> InstructedCorpus:
    client = chromadb.PersistentClient(path=str(tmp_path_factory.mktemp("ranking") / "chroma"))
    corpus = InstructedCorpus(client, "ranking", model_kwargs=FLOAT32, cache=False)
    assert corpus.index(DOCS, [TOPIC, COUNTRY]) == {TOPIC: len(DOCS), COUNTRY: len(DOCS)}
    return corpus


@pytest.fixture(scope="module")
def documents(engine) -> dict[str, np.ndarray]:
    """The documents embedded directly by the engine, not read back from the store."""
    return {q: engine.embed(DOCS, q, normalize=False).astype(np.float64) for q in (TOPIC, COUNTRY)}


def expected_cosines(engine, documents, query: str, instruction: str) -> np.ndarray:
    """Query and documents both read under ``instruction``; cosine by hand, not through the store."""
    vectors = documents[instruction]
    query_vector = engine.embed([query], instruction, normalize=False)[0].astype(np.float64)
    return vectors @ query_vector / np.linalg.norm(vectors, axis=1) / np.linalg.norm(query_vector)


@pytest.mark.parametrize("query", [FLOODS, FOOTBALL])
@pytest.mark.parametrize("instruction", [TOPIC, COUNTRY])
def test_store_ranking_equals_cosine_ranking(corpus, engine, documents, query, instruction):
    assert query not in DOCS
    cosines = expected_cosines(engine, documents, query, instruction)
    order = np.argsort(-cosines)
    # The order is well defined: neighbours differ by far more than the 1e-5 the paths may differ.
    assert np.min(-np.diff(cosines[order])) > 1e-4
    hits = corpus.search(query, instruction, k=len(DOCS))
    assert [hit.text for hit in hits] == [DOCS[i] for i in order]
    np.testing.assert_allclose([hit.score for hit in hits], cosines[order], atol=1e-4)
    assert [hit.text for hit in corpus.search(query, instruction, k=2)] == [DOCS[i] for i in order[:2]]


def test_the_instruction_changes_the_top_hits(corpus):
    """Floods in Germany: the German news under the country question, the disaster under the topic one.

    Measured (fp32, the default shipped since issue 27): under COUNTRY the German pair scores
    0.97-0.98 and the next document 0.64; under TOPIC the tsunami scores 0.90 and every other
    document 0.58-0.73 (the car makers 0.73, the bank 0.72: business, both equally far from floods).
    """
    german = {DOCS[0], DOCS[3]}
    by_country = corpus.search(FLOODS, COUNTRY, k=len(DOCS))
    by_topic = corpus.search(FLOODS, TOPIC, k=len(DOCS))
    assert {hit.text for hit in by_country[:2]} == german
    assert by_topic[0].text == DOCS[4]
    topic_scores = {hit.text: hit.score for hit in by_topic}
    assert all(topic_scores[DOCS[4]] > topic_scores[text] + 0.1 for text in german), topic_scores
    assert not german <= {hit.text for hit in by_topic[:3]}, (
        "the German pair leads only under the country question"
    )
