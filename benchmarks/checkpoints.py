"""Figures for docs/engine.md's checkpoint section, written to docs/checkpoints.json.

1. Conformance: on each tiny fixture of tests/data/checkpoints (random weights laid out like
   a public checkpoint), the lowest cosine between the package's fp32 vectors and the
   reference written from the original code (tests/checkpoint_reference.py).
2. The two deliberate differences from the original inference code, measured on the real
   default model (fp32) and BBC articles:
   - truncation: the original cuts prompts from the left (losing ``### Input:`` and the start of
     the text); the package keeps the template and cuts the text's end;
   - ``mean_answer_tokens`` on a one-token answer: the original then also averages the state at
     that answer token (its fallback), the package averages only the states that predicted content.

    python benchmarks/checkpoints.py [--output docs/checkpoints.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inbedder_integrations import InBedder  # noqa: E402
from inbedder_integrations.engine.loading import cpu_has_native_bf16  # noqa: E402
from inbedder_integrations.evaluation import loaders  # noqa: E402
from tests import checkpoint_reference as reference  # noqa: E402
from tests.engine.test_checkpoints import FAMILIES, FIXTURES, INSTRUCTIONS, TEXTS  # noqa: E402

TOPIC = "What is the topic of this news article?"
SHORT_PROMPT = 128  # tokens: every article below is longer, so every one is cut


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def conformance() -> dict[str, float]:
    from tests.engine.test_checkpoints import reference_vectors

    lowest = {}
    for folder, checkpoint, recipe in FAMILIES:
        engine = InBedder.from_pretrained(
            str(FIXTURES / folder), checkpoint=checkpoint, dtype="float32", cache=False
        )
        worst = min(
            float(
                cosines(engine.embed(TEXTS, q, normalize=False), reference_vectors(folder, recipe, q)).min()
            )
            for q in INSTRUCTIONS
        )
        lowest[checkpoint] = round(worst, 8)
    return lowest


def truncation(articles: list[str], labels: list[str]) -> dict[str, float]:
    """Cosine between the two cuts, and how often each cut's vector lies nearest its own topic."""
    engine = InBedder.from_pretrained("default", dtype="float32", max_length=SHORT_PROMPT, cache=False)
    ours = engine.embed(articles, TOPIC, normalize=False)
    left = np.concatenate(
        [
            reference.causal_fst_gen(
                engine.model, engine.tokenizer, articles[i : i + 8], TOPIC, max_length=SHORT_PROMPT
            )
            for i in range(0, len(articles), 8)
        ]
    )
    return {
        "texts": len(articles),
        "max_length": SHORT_PROMPT,
        "cosine_mean": round(float(cosines(ours, left).mean()), 4),
        "cosine_min": round(float(cosines(ours, left).min()), 4),
        "topic_1nn_accuracy_package": nearest_neighbour_accuracy(ours, labels),
        "topic_1nn_accuracy_left_cut": nearest_neighbour_accuracy(left, labels),
    }


def nearest_neighbour_accuracy(vectors: np.ndarray, labels: list[str]) -> float:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(1)
    return round(float(np.mean([labels[j] == labels[i] for i, j in enumerate(nearest)])), 4)


def one_token_answers(texts: list[str]) -> dict[str, float]:
    engine = InBedder.from_pretrained("default", dtype="float32", pooling="mean_answer_tokens", cache=False)
    question = "Is this news good or bad? Answer in one word."
    ours = engine.embed(texts, question, normalize=False)
    original = np.concatenate(
        [
            reference.causal_avg_gen(
                engine.model, engine.tokenizer, texts[i : i + 8], question, max_new_tokens=3
            )
            for i in range(0, len(texts), 8)
        ]
    )
    agreement = cosines(ours, original)
    differ = agreement < 0.99999
    return {
        "texts": len(texts),
        "instruction": question,
        "share_that_differ": round(float(differ.mean()), 4),
        "cosine_where_they_differ_mean": round(float(agreement[differ].mean()), 4) if differ.any() else None,
        "cosine_where_they_differ_min": round(float(agreement[differ].min()), 4) if differ.any() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(ROOT / "docs" / "checkpoints.json"))
    parser.add_argument("--per-topic", type=int, default=8, help="BBC articles per topic")
    args = parser.parse_args()
    torch.manual_seed(0)
    articles, labels = loaders.load_bbc(per_topic=args.per_topic, seed=0)
    openings = [article[:300] for article in articles]
    result = {
        "command": "python benchmarks/checkpoints.py",
        "machine": f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        + ("a CPU with native bf16" if cpu_has_native_bf16() else "an AVX2 CPU (bf16 emulated)")
        + "; every figure in fp32",
        "conformance_min_cosine": conformance(),
        "truncation": truncation(articles, labels),
        "one_token_answers": one_token_answers(openings),
    }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
