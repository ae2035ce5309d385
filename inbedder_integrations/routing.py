"""Routing a question to the instruction whose collection fits it, and searching there.

A corpus indexed under several instructions has one collection per instruction;
a question should be answered from the collection whose instruction fits it.
:func:`route_question` asks the engine: the question and a short description of
each instruction's answers ("the subject of the news: sport, business...") are
embedded under :data:`ROUTING_INSTRUCTION`, and the nearest description wins.
Descriptions matter: the bare instruction texts route poorly, because an
instruction, read as a text, has no answer of its own.  A ``choose`` callable
(an LLM's pick, say) can replace the embedding choice.  :func:`routed_search`
then searches the chosen collection (or the ``top`` best, merged by score) and
tags each hit with the instruction it came from: what the LangChain and
LlamaIndex retrievers return.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .documents import INSTRUCTION_KEY
from .embedder import Embedder
from .errors import InvalidArgumentError, InvalidTypeError, positive_int
from .validation import validate_instruction

if TYPE_CHECKING:
    from .corpus import InstructedCorpus, SearchHit
    from .engine import InBedder

__all__ = [
    "INSTRUCTION_KEY",
    "INSTRUCTION_METADATA_KEY",
    "ROUTING_INSTRUCTION",
    "Chooser",
    "Route",
    "route_question",
    "routed_search",
]

ROUTING_INSTRUCTION = "What is this text about?"
#: The metadata key under which a retrieved document names the instruction it was found under:
#: :data:`~inbedder_integrations.documents.INSTRUCTION_KEY`, under its old name (an alias kept for
#: one release).
INSTRUCTION_METADATA_KEY = INSTRUCTION_KEY
#: ``choose(question, {instruction: description})`` -> the instruction to search under.
Chooser = Callable[[str, Mapping[str, str]], str]


@dataclass(frozen=True)
class Route:
    """The chosen instruction with every score, so a caller can see how close the call was."""

    instruction: str
    scores: dict[str, float]
    """Cosine between the question and each instruction's description, under the routing instruction
    (empty when a ``choose`` callable made the choice)."""

    def ranked(self) -> list[str]:
        """Every instruction, best first (the chosen one first)."""
        rest = sorted((q for q in self.scores if q != self.instruction), key=lambda q: -self.scores[q])
        return [self.instruction, *rest]


def route_question(
    engine: InBedder | Embedder,
    question: str,
    routes: Mapping[str, str] | Sequence[str],
    *,
    routing_instruction: str = ROUTING_INSTRUCTION,
) -> Route:
    """The instruction whose description is nearest the question (ties go to the first).

    ``routes`` maps each instruction to a description of what its answers are
    about; a plain list of instructions describes each by its own text.  ``engine``: an
    engine, or an :class:`~inbedder_integrations.embedder.Embedder` whose documents are read
    under ``routing_instruction`` (a corpus's, a server's: see :func:`routed_search`).
    """
    routes = _described(routes)
    instructions = list(routes)
    texts = [question, *routes.values()]
    if isinstance(engine, Embedder):
        if engine.instruction != routing_instruction:
            raise InvalidArgumentError(
                f"the embedder reads documents under {engine.instruction!r}, "
                f"not the routing instruction {routing_instruction!r}"
            )
        vectors = engine.embed_documents_array(texts)
    else:
        vectors = engine.embed(texts, routing_instruction)
    similarities = vectors[1:] @ vectors[0]
    scores = {instruction: float(s) for instruction, s in zip(instructions, similarities, strict=True)}
    return Route(instructions[int(similarities.argmax())], scores)


def routed_search(
    corpus: InstructedCorpus,
    question: str,
    *,
    k: int = 4,
    descriptions: Mapping[str, str] | None = None,
    top: int = 1,
    choose: Chooser | None = None,
    engine: InBedder | Embedder | None = None,
) -> tuple[Route, list[SearchHit]]:
    """The ``k`` hits for ``question`` from the collection whose instruction fits it.

    ``descriptions``: instruction -> what its answers are about (default: every
    instruction the corpus is indexed under, described by its own text).  ``top``:
    search that many of the best-fitting instructions and merge by score, each
    document once (its best hit).  ``choose``: pick the instruction another way (an
    LLM); its answer must be one of them.  Every hit's metadata names its instruction.
    ``engine``: what embeds the question for routing; by default the corpus's own embedder
    (:meth:`InstructedCorpus.embedder <inbedder_integrations.corpus.InstructedCorpus.embedder>`),
    so routing uses the corpus's cache, and a corpus that queries through a server routes
    through it too (which must then serve :data:`ROUTING_INSTRUCTION`).
    """
    positive_int("k", k)
    positive_int("top", top)
    routes = _described(descriptions if descriptions is not None else corpus.instructions())
    if choose is not None:
        chosen = choose(question, routes)
        if chosen not in routes:
            raise InvalidArgumentError(f"the chooser picked {chosen!r}, which is not one of {list(routes)}")
        route = Route(chosen, {})
        searched = [chosen]
    else:
        route = route_question(
            corpus.embedder(ROUTING_INSTRUCTION) if engine is None else engine, question, routes
        )
        searched = route.ranked()[:top]
    best: dict[str, SearchHit] = {}
    for instruction in searched:
        for hit in corpus.search(question, instruction, k=k):
            tagged = replace(hit, metadata={**hit.metadata, INSTRUCTION_KEY: instruction})
            if hit.id not in best or hit.score > best[hit.id].score:
                best[hit.id] = tagged
    return route, sorted(best.values(), key=lambda hit: -hit.score)[:k]


def _described(routes: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    if isinstance(routes, str) or not routes:
        raise InvalidTypeError("routes must be a non-empty mapping of instruction to description, or a list")
    if not isinstance(routes, Mapping):
        routes = {instruction: instruction for instruction in routes}
    for instruction, description in routes.items():
        validate_instruction(instruction, "a route's instruction")
        validate_instruction(description, f"the description of {instruction!r}")
    return dict(routes)
