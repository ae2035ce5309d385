"""What the two RAG recipes share: the example routes, the indexed sample, the printout, the CLI.

Kept out of the package because it is scaffolding for ``rag_langchain.py`` and
``rag_llamaindex.py`` (fixed BBC sample, fixed example questions), not
something a library user calls.  The recipes import it as a sibling script,
which works because Python puts ``recipes/`` first on ``sys.path`` when a
recipe is run.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from inbedder_integrations.clustering import load_corpus
from inbedder_integrations.corpus import InstructedCorpus, connect

__all__ = [
    "EXAMPLE_INSTRUCTIONS",
    "EXAMPLE_QUESTIONS",
    "EXAMPLE_ROUTES",
    "index_sample",
    "print_answer",
    "recipe_main",
]

EXAMPLE_ROUTES = {
    "What is the topic of this news?": "the subject of the news: sport, business, politics, technology "
    "or entertainment",
    "Is the news good or bad for the people involved?": "whether the news is good or bad for people: "
    "success or failure, winning or losing",
}
"""The instructions the recipes index under, each with the description routing compares questions to."""
EXAMPLE_INSTRUCTIONS = tuple(EXAMPLE_ROUTES)
EXAMPLE_QUESTIONS = ("Which news is about football?", "Which news is good for the people involved?")


def index_sample(
    store: str | Path, *, source: str = "bbc", limit: int = 100, model: str = "default"
) -> InstructedCorpus:
    """Index a fixed sample of ``source`` under :data:`EXAMPLE_INSTRUCTIONS` (reruns write nothing)."""
    corpus = InstructedCorpus(connect(store), f"{source}-rag", model=model)
    sample = load_corpus(source, limit=limit)
    print(f"indexing {len(sample.texts)} texts of {source} under {len(EXAMPLE_INSTRUCTIONS)} instructions")
    corpus.index(sample.as_documents(), list(EXAMPLE_INSTRUCTIONS))
    return corpus


def print_answer(question: str, instruction: str, answer: str, sources: Sequence[tuple[str, str]]) -> None:
    """Show a recipe's result: the question, where it was answered from, the answer, the sources."""
    print(f"\nQ: {question}\n   from the collection for: {instruction!r}\nA: {answer.strip()}")
    for number, (label, text) in enumerate(sources, start=1):
        print(f"   [{number}] {label:<13} {' '.join(text.split())[:70]}")


def recipe_main(run: Callable[..., object], description: str, argv: Sequence[str] | None = None) -> None:
    """The command line both RAG recipes take; ``run`` is the recipe's own."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--question", action="append", help="repeat for several (default: two examples)")
    parser.add_argument("--instruction", default=None, help="use this instruction's collection, no routing")
    parser.add_argument("--limit", type=int, default=100, help="BBC articles to index (fixed sample)")
    parser.add_argument("--store", default=None, help="Chroma folder to keep (default: a temporary one)")
    parser.add_argument("--model", default="default", help="the InBedder embedding model")
    parser.add_argument("--generator", default="default", help="the chat model that answers (a hub id)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        run(
            args.question or list(EXAMPLE_QUESTIONS),
            store=args.store or scratch,
            limit=args.limit,
            instruction=args.instruction,
            model=args.model,
            generator=args.generator,
        )
