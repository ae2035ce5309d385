"""Answers the untuned base model already gives, kept as training rows (issue 35's "keep what the
base model already answers").

Fine-tuning on a list of labelled families narrows what the model answers: asked a question it
never saw, the default answers as if it were one of its families ("food" to every restaurant
review).  The untuned base answers open questions in sentences ("The restaurant serves sushi and
ramen").  Here the base model is asked open questions about real texts, twice (the question and a
paraphrase), each answer is cut to a short span, and a row is kept only when both wordings give
the same span: a cheap check that the answer is the text's, not the wording's.  Training on these
beside the labelled families teaches brevity without a narrower answer space.

No question may ask what a held-out evaluation family asks
(:func:`~inbedder_integrations.evaluation.heldout_families.forbidden_instruction`).
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidArgumentError
from ..evaluation.heldout_families import forbidden_instruction

__all__ = ["OPEN_QUESTIONS", "consistent", "distill_rows", "grounded", "short_span", "source_texts"]

logger = logging.getLogger(__name__)

#: Open questions, each with a paraphrase: the kinds of answer a user's own question expects.
OPEN_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("What is the main point of the text?", "What is the text mainly saying?"),
    ("Who is the text about?", "Which person is the text about?"),
    ("What object is the text about?", "Which thing does the text talk about?"),
    ("What does the writer want?", "What is the writer asking for?"),
    ("What problem does the text describe?", "What is the problem in the text?"),
    ("What organisation does the text mention?", "Which organisation is named in the text?"),
    ("What event does the text describe?", "Which event is the text about?"),
    ("What is the writer's opinion?", "What does the writer think?"),
)

#: Lead-ins the base model opens its answers with, cut before the span is taken.
_LEAD_INS = re.compile(
    r"^(the (main )?(point|text|writer|author|article|person|object|problem|event|organisation|"
    r"organization|opinion)( of the text)?( is| was| are| wants| thinks| describes| mentions| asks for)?"
    r"( about| that| to)?|it is( about)?|this is( about)?|answer:)\s+",
    re.IGNORECASE,
)
_MAX_WORDS = 4
#: Words a span may hold that its text need not: a span of only these says nothing.
_FUNCTION_WORDS = frozenset({
    "a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "with", "by", "at", "from",
    "his", "her", "their", "its", "my", "our", "your",
})  # fmt: skip


class Answering(Protocol):
    """What :func:`distill_rows` needs of an engine: :meth:`InBedder.answer`."""

    def answer(self, texts: Sequence[str], instruction: str, *, max_new_tokens: int = ...) -> list[str]: ...


def short_span(answer: str) -> str:
    """The answer's first clause without the lead-in, at most four words; "" when nothing is left."""
    first = answer.strip().split("\n")[0]
    first = _LEAD_INS.sub("", first.strip())
    clause = re.split(r"[.;:!?,()\"]", first)[0]
    words = clause.split()
    if len(words) > _MAX_WORDS:
        return ""
    return " ".join(words).strip(" '-").lower()


def consistent(first: str, second: str) -> bool:
    """Both wordings' spans name the same thing: equal, or one's words all within the other's."""
    if not first or not second:
        return False
    a, b = set(first.split()), set(second.split())
    return a <= b or b <= a


def grounded(span: str, text: str) -> bool:
    """Every content word of ``span`` is in ``text``, and it has one: a small base model answers
    fluently about things the text never says ("a wedding" for a delivery complaint), and two
    wordings can agree on the same invention."""
    words = set(re.findall(r"[\w']+", text.lower()))
    content = [word for word in span.split() if word not in _FUNCTION_WORDS]
    return bool(content) and all(word in words for word in content)


def source_texts(path: Path, limit: int, *, seed: int = 0, max_words: int = 120) -> list[str]:
    """Up to ``limit`` distinct inputs of a training file (already checked against the evaluation
    texts when it was built), short enough for a quick answer."""
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        inputs = {json.loads(line)["input"] for line in lines if line.strip()}
    short = sorted(text for text in inputs if 0 < len(text.split()) <= max_words)
    random.Random(seed).shuffle(short)
    return short[:limit]


def distill_rows(
    engine: Answering,
    texts: Sequence[str],
    questions: Iterable[tuple[str, str]] = OPEN_QUESTIONS,
    *,
    max_new_tokens: int = 12,
) -> Iterator[dict[str, Any]]:
    """Training rows for the answers that both wordings of a question agree on, in the text's words."""
    for question, paraphrase in questions:
        for asked in (question, paraphrase):
            family = forbidden_instruction(asked)
            if family is not None:
                raise InvalidArgumentError(f"{asked!r} asks what the held-out family {family!r} asks")
        firsts = engine.answer(texts, question, max_new_tokens=max_new_tokens)
        seconds = engine.answer(texts, paraphrase, max_new_tokens=max_new_tokens)
        family = "self:" + re.sub(r"\W+", "-", question.lower()).strip("-")
        kept = 0
        for text, first, second in zip(texts, firsts, seconds, strict=True):
            span, other = short_span(first), short_span(second)
            shorter = min(span, other, key=len)
            if consistent(span, other) and grounded(shorter, text):
                kept += 1
                yield {"instruction": question, "input": text, "output": shorter, "family": family,
                       "source": "self-distilled:base-model", "answer_by": "base-model"}  # fmt: skip
        logger.info("%r: kept %d of %d answers", question, kept, len(texts))
