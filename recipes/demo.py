"""The main-job demo: one BBC News sample, three questions, three geometries.

1. indexes a fixed sample of BBC articles into a local Chroma folder, one
   collection per instruction;
2. shows how one query's hits change with the instruction;
3. clusters the sample under each instruction (k-means), names every cluster
   from the model's own short answers, scores it against the topic labels;
4. writes a PNG with one map per instruction and a self-contained HTML report.

Run with ``make demo`` (or ``python recipes/demo.py --limit 200``).
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from inbedder_integrations import InBedder
from inbedder_integrations.clustering import (
    BBC_INSTRUCTIONS,
    NAME_SEPARATOR,
    InstructionClusters,
    cluster_corpus,
    load_corpus,
    write_report,
)
from inbedder_integrations.corpus import InstructedCorpus, connect
from inbedder_integrations.evaluation.answers import canonical_topic

QUERY = "The company's profits collapsed and hundreds of workers lost their jobs."


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--limit", type=int, default=100, help="BBC articles (a fixed sample, 1/5 per topic)")
    parser.add_argument("--output", default="demo-output", help="folder for the Chroma store and the report")
    parser.add_argument("-k", type=int, default=5, help="clusters per instruction (0: choose by silhouette)")
    args = parser.parse_args(argv)
    output = Path(args.output)

    engine = InBedder.from_pretrained("default")
    print(f"model: {engine.model_name} + InBedder adapter  dtype: {engine.dtype}  dim: {engine.dim}")
    sample = load_corpus("bbc", limit=args.limit)
    print(f"BBC News sample: {len(sample.texts)} articles, topics {sorted(set(sample.labels or []))}")

    print(f"\n[1/4] indexing under {len(BBC_INSTRUCTIONS)} instructions into {output / 'chroma'}", flush=True)
    corpus = InstructedCorpus(connect(output / "chroma"), "bbc-demo")
    documents = sample.as_documents()
    written = corpus.index(documents, list(BBC_INSTRUCTIONS), show_progress=True)
    print(f"  rows written per instruction: {list(written.values())} (a rerun writes none)")

    print(f"\n[2/4] one query, three rankings: {QUERY!r}")
    for instruction in BBC_INSTRUCTIONS:
        print(f"  {instruction}")
        for hit in corpus.search(QUERY, instruction, k=3):
            print(
                f"    {hit.score:.3f}  {hit.metadata.get('label', '?'):<13} {' '.join(hit.text.split())[:60]}"
            )

    print("\n[3/4] clustering under each instruction and naming the clusters", flush=True)
    ids = [document["id"] for document in documents]
    stored = {instruction: corpus.embeddings(instruction, ids) for instruction in BBC_INSTRUCTIONS}
    report = cluster_corpus(engine, sample, list(BBC_INSTRUCTIONS), k=args.k or None, embeddings=stored)
    for result in report.results:
        print(f"  {result.instruction}\n    {result.cluster_names()}")
        print(
            f"    {name_check(result, sample.labels or [], topic=result.instruction == BBC_INSTRUCTIONS[0])}"
        )
    print("\n  against the topic labels:")
    print("  " + report.metrics_table().replace("\n", "\n  "))

    print("\n[4/4] writing the report", flush=True)
    paths = write_report(report, output / "report")
    print(f"  picture: {paths['png']}\n  report:  {paths['html']}")


def name_check(result: InstructionClusters, labels: Sequence[str], *, topic: bool) -> str:
    """How many names' answer half is the cluster's majority topic, and how many members agreed on it.

    Why: a reader trusts a name that says what most of the cluster is, in words the members
    themselves chose; these two counts are what docs/recipes.md reports.
    """
    matching = 0
    for cluster in result.clusters:
        members = [labels[i] for i, c in enumerate(result.assignments) if c == cluster.id]
        majority = Counter(members).most_common(1)[0][0] if members else None
        answer = cluster.name.partition(NAME_SEPARATOR)[0] if cluster.answer_source != "none" else ""
        matching += bool(answer) and canonical_topic(answer) == majority
    agreed = sum(cluster.answer_source == "agreement" for cluster in result.clusters)
    check = f"named by the members' agreed answer: {agreed} of {len(result.clusters)}"
    if topic:
        check = f"answer half names the majority topic: {matching} of {len(result.clusters)}; {check}"
    return check


if __name__ == "__main__":
    main()
