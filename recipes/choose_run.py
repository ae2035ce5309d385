"""Choose between training runs on their dev reports, by the rule in docs/training.md.

    python recipes/choose_run.py runs/*/dev-eval/report.json [--reference MODEL] [--rule auto|issue27|issue35]

Reports are merged by model name, so one model's suites may come from several files
(an old full dev report and a ``--suites heldout_families`` one, say); a suite in two
files of the same model is refused.

Two rules, both fixed before the runs they chose were read:

* ``issue27``: the mean of :func:`rule_parts` (the existing dev suites);
* ``issue35`` (fixed 2026-12-07): 0.5 x that mean + 0.5 x the held-out dev score, the
  mean over the five dev families of (triplet success under the family's question +
  answer agreement) / 2.
``auto`` (the default) takes ``issue35`` when any model has the ``heldout_families`` suite,
else ``issue27``, so old reports are scored as they were.

``--reference`` names the shipped default's row: a run more than ``KEEP_MARGIN`` below
it on ``KEPT`` is not eligible (what works must keep working), and under ``issue35`` on
any of ``KEPT_ISSUE35`` either; the reference itself stays eligible, so no run is shipped
that is not better by the rule.

Every report must be of the dev split: the test split is never used to choose.
Prints one markdown row per run (the rule's parts and its score) and the winner.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

KEPT = ("bbc_topic_place hmean", "mean answer agreement")
KEEP_MARGIN = 0.02
DEV_FAMILIES = ("time_of_day", "profession", "animal_mention", "instrument", "people_count")
"""The held-out dev families (inbedder_integrations/evaluation/heldout_families.py): fixed, checked."""
KEPT_ISSUE35 = (
    ("bbc_topic_place", "hmean"),
    ("messages_emotion_intent", "emotion"),
    ("messages_emotion_intent", "intent"),
    ("rt_sentiment_movie", "hmean"),
    ("polarity", "knn_acc"),
    ("answers", "*"),
    ("message_answers", "*"),
)
"""Figures no run may lose more than KEEP_MARGIN of under issue35 ('*': every answer agreement)."""


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


def heldout_dev_score(results: dict) -> float:
    """Mean over the five dev families of (triplet success under A + answer agreement) / 2."""
    families = results["heldout_families"]["families"]
    if set(families) != set(DEV_FAMILIES):
        raise SystemExit(
            f"heldout_families has {sorted(families)}, not the dev families {sorted(DEV_FAMILIES)}"
        )
    if any(families[slug]["agreement"] is None for slug in DEV_FAMILIES):
        raise SystemExit("heldout_families has no answers (a plain embedder): it cannot be chosen")
    return statistics.mean((families[s]["triplets_a"] + families[s]["agreement"]) / 2 for s in DEV_FAMILIES)


def issue35_parts(results: dict) -> dict[str, float]:
    """The old rule's mean and the held-out dev score, the two halves of the issue35 score."""
    return {
        "old rule score": statistics.mean(rule_parts(results).values()),
        "heldout dev score": heldout_dev_score(results),
    }


def kept_figures(results: dict) -> dict[str, float]:
    """Every figure of ``KEPT_ISSUE35`` the results hold, named 'suite metric'."""
    found = {}
    for suite, metric in KEPT_ISSUE35:
        values = results.get(suite, {})
        for name, value in values.items():
            if (metric == "*" or name == metric) and value is not None:
                found[f"{suite} {name}"] = value
    return found


def eligible_issue35(results: dict, reference: dict | None) -> list[str]:
    """The kept figures more than ``KEEP_MARGIN`` below the reference's (or missing where it has them);
    empty: eligible.  The issue27 rule (``KEPT``) applies as well."""
    if reference is None:
        return []
    ours, theirs = kept_figures(results), kept_figures(reference)
    lost = [name for name, value in theirs.items() if ours.get(name, float("-inf")) < value - KEEP_MARGIN]
    if not eligible(rule_parts(results), rule_parts(reference)):
        lost += [name for name in KEPT if name not in lost]
    return lost


def merge_reports(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """Model -> suite -> figures over every report, each of the dev split."""
    merged: dict[str, dict[str, Any]] = {}
    for path in paths:
        report = json.loads(path.read_text(encoding="utf-8"))
        if report["settings"]["split"] != "dev":
            raise SystemExit(f"{path} is a {report['settings']['split']} report: choose on dev only")
        for model, results in report["results"].items():
            suites = merged.setdefault(model, {})
            twice = set(suites) & set(results)
            if twice:
                raise SystemExit(f"{path}: {model!r} has {sorted(twice)} in another report too")
            suites.update(results)
    return merged


OLD_SUITES = ("bbc_topic_place", "rt_sentiment_movie", "polarity", "bbc", "answers")


def unscorable(results: dict, rule: str) -> str | None:
    """Why a model's results cannot be scored by ``rule`` (a suite missing, no answers), or None."""
    needed = OLD_SUITES + (("heldout_families",) if rule == "issue35" else ())
    missing = [suite for suite in needed if suite not in results]
    if missing:
        return f"no {', '.join(missing)}"
    if all(value is None for value in results["answers"].values()):
        return "no answers (a plain embedder)"
    return None


def choose(
    merged: dict[str, dict[str, Any]], reference_name: str | None, rule: str
) -> tuple[list[tuple[float, str, dict[str, float]]], dict[str, list[str]], dict[str, str]]:
    """(score, model, parts) per scored model, model -> why it is not eligible, and
    model -> why it was not scored (a baseline without answers, a report without the rule's suites)."""
    if rule == "auto":
        rule = "issue35" if any("heldout_families" in r for r in merged.values()) else "issue27"
    skipped = {model: why for model, results in merged.items() if (why := unscorable(results, rule))}
    if reference_name and reference_name not in merged:
        raise SystemExit(f"--reference {reference_name!r} is in none of the reports")
    if reference_name in skipped:
        raise SystemExit(
            f"--reference {reference_name!r} cannot be scored by {rule}: {skipped[reference_name]}"
        )
    reference = merged[reference_name] if reference_name else None
    scored, refused = [], {}
    for model, results in merged.items():
        if model in skipped:
            continue
        if rule == "issue35":
            parts = issue35_parts(results)
            score = 0.5 * parts["old rule score"] + 0.5 * parts["heldout dev score"]
            lost = eligible_issue35(results, reference)
        else:
            parts = rule_parts(results)
            score = statistics.mean(parts.values())
            lost = [] if eligible(parts, rule_parts(reference) if reference else None) else list(KEPT)
        scored.append((score, model, parts))
        if lost:
            refused[model] = lost
    if not scored:
        raise SystemExit(f"no model can be scored by {rule}: {skipped}")
    return scored, refused, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "reports", nargs="+", type=Path, help="report.json files of `inbedder eval --split dev`"
    )
    parser.add_argument("--reference", default=None, help="the shipped default's model name in the reports")
    parser.add_argument("--rule", choices=("auto", "issue27", "issue35"), default="auto")
    args = parser.parse_args()
    scored, refused, skipped = choose(merge_reports(args.reports), args.reference, args.rule)
    for model, why in skipped.items():
        print(f"not scored: {model} ({why})\n")
    names = list(scored[0][2])
    print("| run (dev split) | " + " | ".join(names) + " | score |")
    print("|---|" + "---|" * (len(names) + 1))
    for score, model, parts in scored:
        print(f"| {model} | " + " | ".join(f"{parts[name]:.3f}" for name in names) + f" | **{score:.4f}** |")
    for model, lost in refused.items():
        print(f"\nnot eligible: {model} (over {KEEP_MARGIN} below the reference on {', '.join(lost)})")
    best = max((item for item in scored if item[1] not in refused), key=lambda item: item[0])
    print(f"\nchosen: {best[1]} (score {best[0]:.4f})")


if __name__ == "__main__":
    main()
