"""Cluster one corpus under several instructions and compare the two clustering methods.

The same texts group differently depending on the question asked of them.
This recipe embeds a corpus once per instruction, clusters the vectors with
k-means and with agglomerative clustering, names every cluster from the
model's own short answers, and writes one report per method (PNG maps, HTML,
JSON, markdown).  With gold labels (BBC topics, polarity) it prints V-measure,
NMI and ARI per instruction, so one table shows which question recovers the
labels.

    python recipes/clustering.py                                   # 200 BBC articles, 3 instructions
    python recipes/clustering.py --corpus polarity -k 2 \\
        --instruction "How does the writer feel?" --instruction "What is the topic of the text?"
    python recipes/clustering.py --corpus my-notes/ --instruction "What is the topic?"   # k by silhouette
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from inbedder_integrations import InBedder
from inbedder_integrations.clustering import (
    CLUSTER_METHODS,
    ClusteringReport,
    cluster_corpus,
    instructions_for,
    load_corpus,
    write_report,
)


def run(
    corpus_name: str,
    instructions: Sequence[str],
    *,
    limit: int | None = 200,
    k: int | None = None,
    output: str | Path = "clustering-output",
    model: str = "default",
) -> dict[str, ClusteringReport]:
    """One report per clustering method; the vectors are computed once and shared by both."""
    engine = InBedder.from_pretrained(model)
    corpus = load_corpus(corpus_name, limit=limit)
    print(f"{corpus.name}: {len(corpus.texts)} texts, {len(instructions)} instructions", flush=True)
    vectors = {instruction: engine.embed(corpus.texts, instruction) for instruction in instructions}
    reports = {}
    for method in CLUSTER_METHODS:
        report = cluster_corpus(engine, corpus, instructions, k=k, method=method, embeddings=vectors)
        paths = write_report(report, Path(output) / method)
        print(f"\n== {method}\n{report.metrics_table()}")
        for result in report.results:
            print(f"  {result.instruction}: {result.cluster_names()}")
        print(f"  report: {paths['html']}")
        reports[method] = report
    return reports


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default="bbc", help="bbc, polarity, lee_background, a folder or .jsonl")
    parser.add_argument("--instruction", action="append", help="repeat for several (bbc has defaults)")
    parser.add_argument("--limit", type=int, default=200, help="a fixed sample of this many texts")
    parser.add_argument("-k", type=int, default=None, help="clusters per instruction; default: silhouette")
    parser.add_argument("--output", default="clustering-output", help="one report folder per method")
    parser.add_argument("--model", default="default", help="the InBedder model")
    args = parser.parse_args(argv)
    instructions = instructions_for(args.corpus, args.instruction)
    run(args.corpus, instructions, limit=args.limit, k=args.k, output=args.output, model=args.model)


if __name__ == "__main__":
    main()
