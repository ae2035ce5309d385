"""The ``heldout_families`` suite: questions the model was never trained on (issue 35).

Each family of :mod:`.heldout_families` has texts labelled with the attribute asked (A)
and a distractor (B).  Per family and embedder the suite reports:

* ``triplets_a``: crossed triplet success under question A (the positive shares A and
  differs in B, the negative shares B and differs in A), and ``triplets_b`` under B's
  question with the roles swapped; for ``language`` the latter is topic across
  languages, also reported as ``cross_lingual_topic``;
* ``agreement``: the share of ``answer`` replies to question A whose canonical value
  (:mod:`.family_answers`) is the label; ``collapse``: the share of the most common
  reply, to set beside ``label_share``, the most common label's share;
* ``answers``: every reply, its canonical value and the label, so a reader sees what
  the model says.

Only the families of the requested split are read: the dev families choose, the test
families report once.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from .baselines import Embedder
from .family_answers import CANONICAL, collapse, label_share
from .heldout_families import Family, families_of
from .metrics import triplet_success_rate
from .triplets import Triplet, crossed_triplets

__all__ = [
    "FAMILIES_PATH",
    "TENSE_PER_CELL",
    "FamilyData",
    "family_suite",
    "hand_written_texts",
    "heldout_families_suite",
    "load_families",
    "load_family_texts",
    "markdown_families",
]

log = logging.getLogger(__name__)

FAMILIES_PATH = Path(__file__).resolve().parent.parent / "assets" / "heldout-families.json"
"""Hand-written texts of every family but ``tense`` (the file says how they were made)."""
TENSE_PER_CELL = 3
"""BBC sentences per (tense, topic): 3 x 3 tenses x 5 topics = 45 texts."""


@dataclass(frozen=True)
class FamilyData:
    """One family's texts, their two labels and the fixed triplets under each question."""

    family: Family
    texts: list[str]
    labels_a: list[str]
    labels_b: list[str]
    triplets_a: list[Triplet]
    triplets_b: list[Triplet]

    def describe(self) -> dict[str, int]:
        return {
            "texts": len(self.texts),
            "triplets_a": len(self.triplets_a),
            "triplets_b": len(self.triplets_b),
        }


def load_family_texts(family: Family, path: Path = FAMILIES_PATH) -> tuple[list[str], list[str], list[str]]:
    """(texts, A labels, B labels) of a hand-written family, each label checked against the family's."""
    entry = json.loads(path.read_text(encoding="utf-8"))["families"].get(family.slug)
    if entry is None:
        raise InvalidArgumentError(f"{path.name} has no family {family.slug!r}")
    texts, a, b = [], [], []
    for index, row in enumerate(entry["texts"]):
        if row.get(family.slug) not in family.values or row.get(family.other) not in family.other_values:
            raise InvalidArgumentError(
                f"{path.name}: {family.slug} text {index} is labelled {row.get(family.slug)!r} /"
                f" {row.get(family.other)!r}, not one of {family.values} / {family.other_values}"
            )
        texts.append(str(row["text"]))
        a.append(row[family.slug])
        b.append(row[family.other])
    return texts, a, b


def hand_written_texts(path: Path = FAMILIES_PATH) -> list[str]:
    """Every hand-written text of every family, dev and test: what training must never contain."""
    families = json.loads(path.read_text(encoding="utf-8"))["families"]
    return [str(row["text"]) for entry in families.values() for row in entry["texts"]]


def _family_rows(family: Family, seed: int, path: Path) -> tuple[list[str], list[str], list[str]]:
    if family.slug != "tense":
        return load_family_texts(family, path)
    from .tense import bbc_tense_sentences

    rows = bbc_tense_sentences(family.split, TENSE_PER_CELL, seed)
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def load_families(
    split: str, triplets: int = 200, seed: int = 0, path: Path = FAMILIES_PATH
) -> dict[str, FamilyData]:
    """Every family of ``split``, with up to ``triplets`` fixed triplets under each question."""
    data = {}
    for family in families_of(split):
        texts, a, b = _family_rows(family, seed, path)
        data[family.slug] = FamilyData(
            family,
            texts,
            a,
            b,
            crossed_triplets(a, b, triplets, seed),
            crossed_triplets(b, a, triplets, seed),
        )
    return data


def _success(embedder: Embedder, texts: Sequence[str], question: str, rows: Sequence[Triplet]) -> float:
    """Triplet success under ``question``, each text used embedded once; NaN without triplets."""
    if not rows:
        return float("nan")
    used = sorted({i for row in rows for i in row})
    vectors = dict(zip(used, embedder([texts[i] for i in used], question), strict=True))
    anchor, positive, negative = (np.stack([vectors[row[k]] for row in rows]) for k in range(3))
    return triplet_success_rate(anchor, positive, negative)


def family_suite(embedder: Embedder, data: FamilyData) -> dict[str, Any]:
    """One family's figures for one embedder (None where the embedder cannot answer)."""
    family = data.family
    results: dict[str, Any] = {"triplets_a": _success(embedder, data.texts, family.question, data.triplets_a)}
    if family.other_question:
        results["triplets_b"] = _success(embedder, data.texts, family.other_question, data.triplets_b)
    if family.slug == "language":
        results["cross_lingual_topic"] = results["triplets_b"]
    canonical = CANONICAL[family.slug]
    answers = embedder.answer(data.texts, family.question)
    results["label_share"] = label_share(data.labels_a)
    if answers is None:
        return results | {"agreement": None, "collapse": None}
    values = [canonical(answer) for answer in answers]
    results["agreement"] = sum(v == g for v, g in zip(values, data.labels_a, strict=True)) / len(answers)
    results["collapse"] = collapse(answers, canonical)
    results["answers"] = [
        {"text": text, "label": label, "answer": answer, "canonical": value}
        for text, label, answer, value in zip(data.texts, data.labels_a, answers, values, strict=True)
    ]
    log.info("%s, %s: %s", embedder.name, family.slug, {k: v for k, v in results.items() if k != "answers"})
    return results


def heldout_families_suite(embedder: Embedder, families: Mapping[str, FamilyData]) -> dict[str, Any]:
    """Every family's figures, and the means the run-choosing rule reads.

    ``score`` = mean over families of (triplets_a + agreement) / 2 (docs/training.md,
    fixed 2026-12-07); None for an embedder without answers.
    """
    per_family = {slug: family_suite(embedder, data) for slug, data in families.items()}
    summary: dict[str, Any] = {
        "mean_triplets_a": statistics.mean(r["triplets_a"] for r in per_family.values())
    }
    agreements = [r["agreement"] for r in per_family.values()]
    has_answers = all(a is not None for a in agreements)
    summary["mean_agreement"] = statistics.mean(agreements) if has_answers else None
    summary["score"] = (
        statistics.mean((r["triplets_a"] + r["agreement"]) / 2 for r in per_family.values())
        if has_answers
        else None
    )
    return {**summary, "families": per_family}


def _cell(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def markdown_families(report: Mapping[str, Mapping[str, Any]], split: str) -> str:
    """Two tables: the means and score per model, then every (model, family) figure."""
    rows = {
        model: suites["heldout_families"] for model, suites in report.items() if "heldout_families" in suites
    }
    if not rows:
        return ""
    summary = ["mean_triplets_a", "mean_agreement", "score"]
    cross = any("language" in result["families"] for result in rows.values())
    header = summary + (["cross_lingual_topic (language family, topic triplets)"] if cross else [])
    lines = [f"| model ({split} split) | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for model, result in rows.items():
        cells = [_cell(result[c]) for c in summary]
        if cross:
            cells.append(_cell(result["families"].get("language", {}).get("cross_lingual_topic")))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    columns = ("triplets_a", "triplets_b", "agreement", "collapse", "label_share")
    lines += ["", f"| model ({split} split) | family | " + " | ".join(columns) + " |"]
    lines.append("|---|---|" + "---|" * len(columns))
    for model, result in rows.items():
        for slug, figures in result["families"].items():
            lines.append(f"| {model} | {slug} | " + " | ".join(_cell(figures.get(c)) for c in columns) + " |")
    return "\n".join(lines)
