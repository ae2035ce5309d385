"""The paper's evaluation suites, and the markdown/JSON report of any suite results.

The offline suites on the fixed dev/test splits live in :mod:`.heldout`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .baselines import Embedder
from .family_suite import markdown_families
from .metrics import (
    clustering_v_measure,
    harmonic_mean,
    robustness,
    sts_spearman,
    triplet_success_rate,
)

__all__ = [
    "FAMILIES_TABLE",
    "TABLES",
    "clustering_suite",
    "markdown_table",
    "markdown_tables",
    "robustness_suite",
    "sts_suite",
    "triplet_suite",
    "write_report",
]


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


# --------------------------------------------------------------------------- reports

TABLES = {
    "Two-label suites: triplet success under each question, and their harmonic mean": (
        "bbc_topic_place",
        "rt_sentiment_movie",
        "messages_emotion_intent",
    ),
    "Vectors: BBC topic V-measure under the topic and two feeling questions, Lee Spearman,"
    " polarity 1-NN sentiment accuracy": ("bbc", "lee", "polarity"),
    "Answers: agreement of `engine.answer` with the labels (n/a: the model cannot answer)": (
        "answers",
        "message_answers",
    ),
}


FAMILIES_TABLE = (
    "Held-out question families (never trained on): triplet success under the family's question (A)"
    " and its distractor's (B), answer agreement under A, the most common answer's share (collapse)"
    " beside the most common label's (n/a: the model cannot answer)"
)


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def markdown_table(
    report: Mapping[str, Mapping[str, Mapping[str, float | None]]],
    split: str | None = None,
    suites: Sequence[str] | None = None,
) -> str:
    """One row per model, one column per suite metric; the header names the split it shows."""
    first = next(iter(report.values()))
    columns = [(suite, metric) for suite in (suites or list(first)) for metric in first[suite]]
    label = f"model ({split} split)" if split else "model"
    header = f"| {label} | " + " | ".join(f"{suite} {metric}" for suite, metric in columns) + " |"
    rule = "|---|" + "---|" * len(columns)
    rows = [
        f"| {name} | " + " | ".join(_cell(suites_[suite][metric]) for suite, metric in columns) + " |"
        for name, suites_ in report.items()
    ]
    return "\n".join([header, rule, *rows])


def markdown_tables(report: Mapping[str, Mapping[str, Mapping[str, float | None]]], split: str) -> str:
    """The offline report as titled tables, each saying which split it shows."""
    present = set(next(iter(report.values())))
    parts = []
    for title, suites in TABLES.items():
        chosen = [suite for suite in suites if suite in present]
        if chosen:
            parts.append(f"### {title} ({split} split)\n\n{markdown_table(report, split, chosen)}")
    if "heldout_families" in present:
        title = f"### {FAMILIES_TABLE} ({split} split)"
        parts.append(f"{title}\n\n{markdown_families(report, split)}")
    return "\n\n".join(parts)


def write_report(report: Mapping[str, Any], output_dir: Path, settings: Mapping[str, Any]) -> Path:
    """``report.json`` (settings + numbers) and ``report.md`` (the tables) in ``output_dir``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "report.json").write_text(
        json.dumps({"settings": settings, "results": report}, indent=2) + "\n"
    )
    split = settings.get("split")
    tables = markdown_tables(report, split) if split else markdown_table(report)
    title = f"# InBedder evaluation ({split} split)" if split else "# InBedder evaluation"
    markdown = f"{title}\n\nSettings: `{json.dumps(settings)}`\n\n{tables}\n"
    (output_dir / "report.md").write_text(markdown)
    return output_dir / "report.md"
