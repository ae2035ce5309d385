"""How ``inbedder cluster`` chooses k: today's silhouette against the model's answers beside it.

    python recipes/k_choice.py --split dev    # the dev set the rule was tuned on (printed, written)
    python recipes/k_choice.py                # the labelled test sets: docs/results/k_choice/test.{json,md}

Each set has gold labels and a known k.  For each, the texts are embedded under
the set's instruction (default model, fp32), k-means is fitted for k = 2..10,
and k is chosen twice: by the silhouette alone (what the command did before)
and by the rule of :mod:`inbedder_integrations.clustering.kchoice` (the model's
answers for a sample of at most 40 texts, grouped by agreement, beside the
silhouette).  The V-measure of each choice against the gold labels is written
beside it.  The rule was fixed on the dev split of the hand-written messages
(``--split dev``) before the test sets were run once.

Vectors and answers go through the engine's cache (``--cache-path``), so a
rerun costs little.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from inbedder_integrations import InBedder
from inbedder_integrations.clustering import (
    CachedAnswers,
    LabelledCorpus,
    answer_sample,
    choose_k,
    label_metrics,
    load_corpus,
)
from inbedder_integrations.clustering.core import MAX_NEW_TOKENS, candidate_clusterings
from inbedder_integrations.clustering.names import NO_ANSWER, answer_group_labels
from inbedder_integrations.evaluation.loaders import load_messages

ROOT = Path(__file__).resolve().parent.parent
FEELING = "How does the customer feel?"
INTENT = "What is the customer asking for?"
TOPIC = "What is the topic of the news?"
PRODUCT = "Which product is the review about?"

#: Written for this table (2026-12-07): 3 products x good/bad, 4 each; the product is the label.
REVIEWS = {
    "headphones": [
        "The noise cancelling on these headphones is superb, I can finally focus on the train.",
        "Comfortable ear cups and the battery lasts all week. Best headphones I've owned.",
        "The left ear bud stopped working after a month and the case cracked.",
        "These headphones hiss at any volume and the bluetooth keeps dropping out.",
    ],
    "running shoes": [
        "Light, springy and my knees no longer ache after a 10k. Love these trainers.",
        "The grip on wet pavement is excellent and they fit true to size.",
        "The sole came unglued after three runs. Worst running shoes I've bought.",
        "Blisters on both heels every time, the shoes are far too narrow.",
    ],
    "coffee maker": [
        "Makes a rich espresso in under a minute and the milk frother is easy to clean.",
        "The coffee machine heats up fast and the timer means fresh coffee when I wake.",
        "The coffee maker leaks water all over the counter and tastes of plastic.",
        "The carafe cracked in a week and the brew is lukewarm and weak.",
    ],
}


def labelled_sets(split: str) -> list[tuple[LabelledCorpus, str]]:
    """(corpus, instruction) pairs, each corpus labelled by what its instruction asks."""
    if split == "dev":
        rows = load_messages("dev")
        texts = [r["text"] for r in rows]
        return [
            (LabelledCorpus("messages dev (emotion)", texts, [r["emotion"] for r in rows]), FEELING),
            (LabelledCorpus("messages dev (intent)", texts, [r["intent"] for r in rows]), INTENT),
        ]
    rows = load_messages("test")
    texts = [r["text"] for r in rows]
    three = [r for r in rows if r["emotion"] in {"angry", "happy", "worried"}]
    bbc = load_corpus("bbc", limit=40)
    openings = [" ".join(text.split()[:60]) for text in bbc.texts]
    reviews = [(text, product) for product, items in REVIEWS.items() for text in items]
    return [
        (LabelledCorpus("BBC News, 40 openings (topic)", openings, bbc.labels), TOPIC),
        (LabelledCorpus("messages test (emotion)", texts, [r["emotion"] for r in rows]), FEELING),
        (LabelledCorpus("messages test (intent)", texts, [r["intent"] for r in rows]), INTENT),
        (
            LabelledCorpus(
                "messages test, angry/happy/worried (emotion)",
                [r["text"] for r in three],
                [r["emotion"] for r in three],
            ),
            FEELING,
        ),
        (
            LabelledCorpus(
                "product reviews, own (product)", [t for t, _ in reviews], [p for _, p in reviews]
            ),
            PRODUCT,
        ),
    ]


def measure(
    engine: InBedder, answers: CachedAnswers, corpus: LabelledCorpus, instruction: str
) -> dict[str, Any]:
    """Both choices of k for one set, with the V-measure of each against the gold labels."""
    assert corpus.labels is not None
    vectors = engine.embed(corpus.texts, instruction)
    fitted, silhouettes = candidate_clusterings(vectors)
    asked = answer_sample(len(corpus.texts))
    given = answers.answer([corpus.texts[i] for i in asked], instruction)
    groups = [None if g == NO_ANSWER else g for g in answer_group_labels(given)]
    today = choose_k(fitted, silhouettes)
    new = choose_k(fitted, silhouettes, asked, groups)

    def v(k: int) -> float:
        return round(label_metrics(corpus.labels or [], fitted[k])["v_measure"], 3)

    return {
        "set": corpus.name,
        "instruction": instruction,
        "texts": len(corpus.texts),
        "true k": len(set(corpus.labels)),
        "today k": today.k,
        "today v_measure": v(today.k),
        "new k": new.k,
        "new v_measure": v(new.k),
        "new rule": new.rule,
        "answer groups": new.answer_groups,
        "coverage": new.coverage,
        "per k": {
            k: {name: round(value, 3) for name, value in scores.items()} | {"v_measure": v(k)}
            for k, scores in new.scores.items()
        },
        "top answers": _top(groups),
    }


def _top(groups: list[str | None]) -> list[tuple[str, int]]:
    from collections import Counter

    return Counter(g for g in groups if g is not None).most_common(8)


def _cpu() -> str:
    """The CPU's model name (Linux), else what platform says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| labelled set | instruction | texts | true k | today's k | V today | new k | V new | new rule |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['instruction']} | {r['texts']} | {r['true k']} | {r['today k']} | "
            f"{r['today v_measure']:.3f} | {r['new k']} | {r['new v_measure']:.3f} | {r['new rule']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=("dev", "test"), default="test")
    parser.add_argument("--cache-path", default=None, help="default: the package's cache file")
    parser.add_argument("--output", default=None, help="default: docs/results/k_choice/<split>.{json,md}")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    engine = InBedder.from_pretrained("default", dtype="float32", cache=args.cache_path or True)
    answers = CachedAnswers(engine, max_new_tokens=MAX_NEW_TOKENS)
    rows = [
        measure(engine, answers, corpus, instruction) for corpus, instruction in labelled_sets(args.split)
    ]
    result = {
        "command": f"python recipes/k_choice.py --split {args.split}",
        "model": engine.model_name,
        "dtype": engine.dtype,
        "cpu": _cpu(),
        "answers": {"computed": answers.stats.computed, "from cache": answers.stats.from_cache},
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    folder = Path(args.output) if args.output else ROOT / "docs" / "results" / "k_choice"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{args.split}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (folder / f"{args.split}.md").write_text(markdown(rows), encoding="utf-8")
    print(json.dumps(result, indent=2))
    print(markdown(rows))


if __name__ == "__main__":
    main()
