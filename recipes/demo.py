"""The main-job demo: the same texts, two questions, two geometries.

Embeds a small set of texts under two instructions and prints, for each
instruction, every text's nearest neighbour and the model's own short answer
(what the vector encodes).  Run with ``make demo``.
"""

from __future__ import annotations

import tempfile

import numpy as np

from inbedder_integrations import InBedder
from inbedder_integrations.corpus import InstructedCorpus, connect

# Two topics x two moods: a topic question should pair texts by topic,
# a feeling question by mood.
TEXTS = [
    "Our team won the championship last night and I am over the moon!",
    "What a miserable season: we lost every single match and the coach quit.",
    "My shares doubled this year, I am thrilled with the stock market.",
    "The bank collapsed and took my savings with it; I feel devastated.",
    "The marathon runners crossed the finish line to huge cheers, pure joy.",
    "Inflation keeps rising and I am worried I cannot pay the rent.",
]
TOPICS = ["sport", "sport", "money", "money", "sport", "money"]
MOODS = ["happy", "unhappy", "happy", "unhappy", "happy", "unhappy"]
INSTRUCTIONS = ["What is the topic of this text?", "How does the writer feel?"]


def main() -> None:
    engine = InBedder.from_pretrained("default")
    print(f"model: {engine.model_name}  dtype: {engine.dtype}  dim: {engine.dim}")
    print(f"fingerprint: {engine.fingerprint}")
    print("(An untuned base model follows instructions weakly; a trained InBedder adapter sharpens this.)\n")
    for instruction in INSTRUCTIONS:
        vectors = engine.embed(TEXTS, instruction)
        answers = engine.answer(TEXTS, instruction, max_new_tokens=8)
        similarity = vectors @ vectors.T
        np.fill_diagonal(similarity, -np.inf)
        print(f"== Instruction: {instruction}")
        for i, text in enumerate(TEXTS):
            j = int(similarity[i].argmax())
            print(f"  [{i}] {text[:60]:<60}  answer: {answers[i][:40]!r}")
            print(f"        nearest: [{j}] (cosine {similarity[i, j]:.3f})")
        nearest = similarity.argmax(axis=1)
        same_topic = sum(TOPICS[i] == TOPICS[j] for i, j in enumerate(nearest))
        same_mood = sum(MOODS[i] == MOODS[j] for i, j in enumerate(nearest))
        print(
            f"  nearest neighbours sharing the topic: {same_topic}/{len(TEXTS)},"
            f" the mood: {same_mood}/{len(TEXTS)}"
        )
        print()
    search_demo()


def search_demo() -> None:
    """Index the texts under both instructions in Chroma; one query, two rankings."""
    with tempfile.TemporaryDirectory() as folder:
        corpus = InstructedCorpus(connect(folder), "demo")
        corpus.index(TEXTS, INSTRUCTIONS)
        query = "I am so happy today"
        print(f"== Chroma: the query {query!r} under each instruction")
        for instruction in corpus.instructions():
            hits = corpus.search(query, instruction, k=3)
            print(f"  {instruction}")
            for hit in hits:
                print(f"    {hit.score:.3f}  {hit.text[:70]}")


if __name__ == "__main__":
    main()
