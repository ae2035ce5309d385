"""Evaluation suites: the paper's, and the offline ones on real data, with one report for all."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .baselines import Embedder
from .loaders import load_bbc, load_lee, load_polarity
from .metrics import (
    clustering_v_measure,
    harmonic_mean,
    robustness,
    spearman,
    sts_spearman,
    triplet_success_rate,
)

BBC_TOPIC_INSTRUCTION = "What is the topic of the news?"
BBC_OTHER_INSTRUCTIONS = ("How does the writer feel?", "Is the news good or bad for the people involved?")
LEE_INSTRUCTION = "What is this news about?"
SENTIMENT_INSTRUCTION = "Is the reviewer's opinion positive or negative?"
TOPIC_INSTRUCTION = "What is the topic of the text?"


# --------------------------------------------------------------------------- the paper's suites


def triplet_suite(
    embedder: Embedder, triplets: Mapping[str, Sequence[tuple[str, str, str]]]
) -> dict[str, float]:
    """IntentEmotion: success rate under each instruction, and their harmonic mean."""
    results = {}
    for instruction, rows in triplets.items():
        anchor, positive, negative = (embedder([row[k] for row in rows], instruction) for k in range(3))
        results[instruction] = triplet_success_rate(anchor, positive, negative)
    results["harmonic_mean"] = harmonic_mean(*results.values())
    return results


def sts_suite(embedder: Embedder, rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """InstructSTSB: each pair embedded under its own instruction; Spearman with the gold scores."""
    by_instruction: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_instruction.setdefault(row["instruction"], []).append(index)
    first: list[np.ndarray] = [np.empty(0)] * len(rows)
    second: list[np.ndarray] = [np.empty(0)] * len(rows)
    for instruction, indices in by_instruction.items():
        a = embedder([rows[i]["sentence1"] for i in indices], instruction)
        b = embedder([rows[i]["sentence2"] for i in indices], instruction)
        for i, u, v in zip(indices, a, b, strict=True):
            first[i], second[i] = u, v
    first_array, second_array = np.stack(first), np.stack(second)
    return {"spearman": sts_spearman(first_array, second_array, [row["score"] for row in rows])}


def clustering_suite(
    embedder: Embedder, datasets: Mapping[str, tuple[Sequence[str], Sequence[str]]], seed: int = 0
) -> dict[str, float]:
    """NYTClustering: V-measure under each (instruction -> texts, labels), and their harmonic mean."""
    results = {
        instruction: clustering_v_measure(embedder(texts, instruction), labels, seed)
        for instruction, (texts, labels) in datasets.items()
    }
    results["harmonic_mean"] = harmonic_mean(*results.values())
    return results


def robustness_suite(
    embedder: Embedder,
    texts: Sequence[str],
    labels: Sequence[str],
    instructions: Mapping[str, Sequence[str]],
    seed: int = 0,
) -> dict[str, float]:
    """V-measure under correct, implicit and incorrect instruction lists; ``dci`` and ``dii``."""
    scores = {
        kind: [
            clustering_v_measure(embedder(texts, instruction), labels, seed)
            for instruction in instructions[kind]
        ]
        for kind in ("correct", "implicit", "incorrect")
    }
    return robustness(scores["correct"], scores["implicit"], scores["incorrect"])


# --------------------------------------------------------------------------- offline suites on real data


def bbc_suite(embedder: Embedder, per_topic: int = 40, seed: int = 0) -> dict[str, float]:
    """BBC topics under the topic question and under questions that do not ask about topic."""
    texts, labels = load_bbc(per_topic, seed)
    topic = clustering_v_measure(embedder(texts, BBC_TOPIC_INSTRUCTION), labels, seed)
    others = [clustering_v_measure(embedder(texts, q), labels, seed) for q in BBC_OTHER_INSTRUCTIONS]
    return {"topic_v": topic, "other_v": float(np.mean(others)), "gap": topic - float(np.mean(others))}


def lee_suite(embedder: Embedder) -> dict[str, float]:
    """Lee documents: Spearman between cosine similarity and human similarity over all pairs."""
    texts, pairs = load_lee()
    vectors = embedder(texts, LEE_INSTRUCTION)
    cosines = [float(vectors[i] @ vectors[j]) for i, j, _ in pairs]
    return {"spearman": spearman(cosines, [score for _, _, score in pairs])}


def polarity_suite(embedder: Embedder, seed: int = 0) -> dict[str, float]:
    """Review sentences clustered into 2 under a sentiment question and under a topic question."""
    texts, labels = load_polarity()
    sentiment = clustering_v_measure(embedder(texts, SENTIMENT_INSTRUCTION), labels, seed)
    topic = clustering_v_measure(embedder(texts, TOPIC_INSTRUCTION), labels, seed)
    return {"sentiment_v": sentiment, "topic_v": topic, "gap": sentiment - topic}


def offline_report(embedders: Sequence[Embedder], bbc_per_topic: int = 40, seed: int = 0) -> dict[str, Any]:
    """Every offline suite for every embedder, on the same data."""
    return {
        embedder.name: {
            "bbc": bbc_suite(embedder, bbc_per_topic, seed),
            "lee": lee_suite(embedder),
            "polarity": polarity_suite(embedder, seed),
        }
        for embedder in embedders
    }


def markdown_table(report: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """One row per model, one column per suite metric."""
    columns = [
        (suite, metric) for suite, metrics in next(iter(report.values())).items() for metric in metrics
    ]
    header = "| model | " + " | ".join(f"{suite} {metric}" for suite, metric in columns) + " |"
    rule = "|---|" + "---|" * len(columns)
    rows = [
        f"| {name} | " + " | ".join(f"{suites[suite][metric]:.3f}" for suite, metric in columns) + " |"
        for name, suites in report.items()
    ]
    return "\n".join([header, rule, *rows])


def write_report(report: Mapping[str, Any], output_dir: Path, settings: Mapping[str, Any]) -> Path:
    """``report.json`` (settings + numbers) and ``report.md`` (the table) in ``output_dir``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "report.json").write_text(
        json.dumps({"settings": settings, "results": report}, indent=2) + "\n"
    )
    markdown = f"# InBedder evaluation\n\nSettings: `{json.dumps(settings)}`\n\n{markdown_table(report)}\n"
    (output_dir / "report.md").write_text(markdown)
    return output_dir / "report.md"
