"""Choose between training runs on their dev reports, by the rule in docs/training.md.

    python recipes/choose_run.py runs/*/dev-eval/report.json [--reference MODEL]

``--reference`` names the shipped default's row: a run more than ``KEEP_MARGIN`` below
it on ``KEPT`` is not eligible (what works must keep working), and the reference
itself stays eligible, so no run is shipped that is not better by the rule.

Every report must be of the dev split: the test split is never used to choose.
Prints one markdown row per run (the rule's parts and its score) and the winner.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

KEPT = ("bbc_topic_place hmean", "mean answer agreement")
KEEP_MARGIN = 0.02


def eligible(parts: dict[str, float], reference: dict[str, float] | None) -> bool:
    """Not more than ``KEEP_MARGIN`` below the reference on any of ``KEPT``."""
    return reference is None or all(parts[name] >= reference[name] - KEEP_MARGIN for name in KEPT)


def rule_parts(results: dict) -> dict[str, float]:
    """The parts the rule averages, each in [0, 1] and higher-is-better."""
    answers = [value for value in results["answers"].values() if value is not None]
    return {
        "bbc_topic_place hmean": results["bbc_topic_place"]["hmean"],
        "rt_sentiment_movie hmean": results["rt_sentiment_movie"]["hmean"],
        "polarity knn_acc": results["polarity"]["knn_acc"],
        "bbc topic_v": results["bbc"]["topic_v"],
        "1 - bbc feel_v": 1.0 - results["bbc"]["feel_v"],
        "mean answer agreement": statistics.mean(answers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "reports", nargs="+", type=Path, help="report.json files of `inbedder eval --split dev`"
    )
    parser.add_argument("--reference", default=None, help="the shipped default's model name in the reports")
    args = parser.parse_args()
    scored = []
    for path in args.reports:
        report = json.loads(path.read_text(encoding="utf-8"))
        if report["settings"]["split"] != "dev":
            raise SystemExit(f"{path} is a {report['settings']['split']} report: choose on dev only")
        for model, results in report["results"].items():
            parts = rule_parts(results)
            scored.append((statistics.mean(parts.values()), model, parts))
    names = list(scored[0][2])
    print("| run (dev split) | " + " | ".join(names) + " | score |")
    print("|---|" + "---|" * (len(names) + 1))
    for score, model, parts in scored:
        print(f"| {model} | " + " | ".join(f"{parts[name]:.3f}" for name in names) + f" | **{score:.4f}** |")
    reference = next((parts for _, model, parts in scored if model == args.reference), None)
    if args.reference and reference is None:
        raise SystemExit(f"--reference {args.reference!r} is in none of the reports")
    allowed = [item for item in scored if eligible(item[2], reference)]
    for _, model, parts in scored:
        if not eligible(parts, reference):
            print(f"\nnot eligible: {model} (over {KEEP_MARGIN} below the reference on {', '.join(KEPT)})")
    best = max(allowed, key=lambda item: item[0])
    print(f"\nchosen: {best[1]} (score {best[0]:.4f})")


if __name__ == "__main__":
    main()
