"""Can the vectors merge the synonyms among the model's answers?  (issue 37, the k-choice gap)

    python recipes/k_choice_synonyms.py    # dev split only: docs/results/k_choice/synonyms-dev.json

The rule of ``clustering.kchoice`` counts answer groups, and under "How does the customer feel?"
the model answers one feeling in several words ("angry", "frustrated"), so the rule picks too many
clusters.  Two ways to merge such groups were measured here, on the dev messages only:

- the texts' own vectors: the mean cosine between two groups' texts against the mean cosine within
  each (average linkage);
- the answers' vectors: each distinct answer embedded as a text under the same instruction.

The file holds both matrices with the gold labels of each group's texts, so a reader can see
whether any threshold would part synonyms from other feelings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from inbedder_integrations import InBedder
from inbedder_integrations.clustering import CachedAnswers
from inbedder_integrations.clustering.core import MAX_NEW_TOKENS
from inbedder_integrations.clustering.kchoice import MIN_GROUP
from inbedder_integrations.clustering.names import NO_ANSWER, answer_group_labels
from inbedder_integrations.evaluation.loaders import load_messages

ROOT = Path(__file__).resolve().parent.parent
FEELING = "How does the customer feel?"


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _mean_cosines(vectors: np.ndarray, members: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    """Mean cosine between every two groups' texts (within a group: pairs of distinct texts)."""
    table: dict[str, dict[str, float]] = {}
    for a, rows_a in members.items():
        table[a] = {}
        for b, rows_b in members.items():
            sims = vectors[rows_a] @ vectors[rows_b].T
            n = len(rows_a)
            value = (sims.sum() - n) / (n * (n - 1)) if a == b else sims.mean()
            table[a][b] = round(float(value), 3)
    return table


def main() -> None:
    engine = InBedder.from_pretrained("default", dtype="float32")
    rows = load_messages("dev")
    texts = [row["text"] for row in rows]
    given = CachedAnswers(engine, max_new_tokens=MAX_NEW_TOKENS).answer(texts, FEELING)
    groups = answer_group_labels(given)
    labels = sorted({g for g in groups if g not in (None, NO_ANSWER) and groups.count(g) >= MIN_GROUP})
    members = {label: [i for i, g in enumerate(groups) if g == label] for label in labels}
    text_vectors = _unit(engine.embed(texts, FEELING))
    answer_vectors = _unit(engine.embed(labels, FEELING))
    result = {
        "command": "python recipes/k_choice_synonyms.py",
        "instruction": FEELING,
        "dtype": engine.dtype,
        "groups": {label: sorted(rows[i]["emotion"] for i in members[label]) for label in labels},
        "texts_mean_cosine": _mean_cosines(text_vectors, members),
        "answers_cosine": {
            a: {b: round(float(answer_vectors[i] @ answer_vectors[j]), 3) for j, b in enumerate(labels)}
            for i, a in enumerate(labels)
        },
    }
    output = ROOT / "docs" / "results" / "k_choice" / "synonyms-dev.json"
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
