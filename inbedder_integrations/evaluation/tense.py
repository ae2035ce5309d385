"""Real BBC News sentences labelled past / present / future by spaCy's morphology.

The held-out ``tense`` family needs texts whose tense is known; writing them would make
the family as easy as its author's style.  spaCy's small English pipeline tags every
finite verb with its tense, so a sentence is labelled only when the label is not in doubt:

* every finite verb has the same tense, or "will"/"shall" is the only finite word
  (future); any other modal ("would", "could"...) or a perfect ("has risen") drops it;
* 8-30 words, one plain declarative sentence: no quotation, question or parenthesis.

Sentences come from the BBC articles of the *test* split of ``eval-splits.json`` (the
family is a test family), the headline left out.
"""

from __future__ import annotations

import functools
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from ..labellers import SPACY_DISTRIBUTION, SPACY_MODEL
from .loaders import bbc_root
from .splits import split_ids

__all__ = ["TENSES", "bbc_tense_sentences", "sentence_tense", "tense_pipeline"]

TENSES = ("past", "present", "future")
_FUTURE = frozenset({"will", "shall", "'ll"})
_PERFECT_AUX = frozenset({"has", "have", "had", "'ve", "'s", "'d"})
_REFUSED = frozenset({'"', "\u201c", "\u201d", "\u2018", "\u2019", "?", "!", ":", ";", "(", ")"})
"""Quotation marks (plain and curly), questions, exclamations, lists and asides: not one plain sentence."""


@functools.cache
def tense_pipeline() -> Any:
    """spaCy's small English pipeline with what morphology and sentences need (no NER)."""
    import spacy

    try:
        return spacy.load(SPACY_MODEL, exclude=["ner", "lemmatizer"])
    except OSError as error:
        raise OSError(
            f"{SPACY_MODEL} is not installed: pip install --no-deps {SPACY_DISTRIBUTION}"
        ) from error


def _finite_tense(token: Any) -> str | None:
    """past / present / future for a finite verb or modal, 'other' for another modal, else None."""
    if token.tag_ == "MD":
        return "future" if token.lower_ in _FUTURE else "other"
    if "Fin" not in token.morph.get("VerbForm"):
        return None
    tense = token.morph.get("Tense")
    return {("Past",): "past", ("Pres",): "present"}.get(tuple(tense), "other")


def sentence_tense(sentence: Any) -> str | None:
    """The one tense of a spaCy sentence span, or None where it is mixed, modal, perfect or unclear."""
    tokens = [token for token in sentence if not token.is_space]
    words = [token for token in tokens if token.is_alpha]
    if not 8 <= len(words) <= 30 or not tokens[0].text[:1].isupper() or tokens[-1].text != ".":
        return None
    if any(token.text in _REFUSED or token.lower_ == "going" for token in tokens):
        return None
    if any(
        token.tag_ == "VBN" and any(c.dep_ == "aux" and c.lower_ in _PERFECT_AUX for c in token.children)
        for token in tokens
    ):
        return None
    found = {tense for token in tokens if (tense := _finite_tense(token))}
    return found.pop() if len(found) == 1 and found <= set(TENSES) else None


def _paragraphs(ids: Iterable[str]) -> list[tuple[str, str]]:
    """(article id, paragraph) of each article, its first line (the headline) left out."""
    root, rows = bbc_root(), []
    for id_ in ids:
        lines = (root / f"{id_}.txt").read_text(encoding="utf-8", errors="replace").splitlines()
        rows += [(id_, " ".join(line.split())) for line in lines[1:] if line.strip()]
    return rows


def bbc_tense_sentences(
    split: str, per_cell: int, seed: int = 0, topics: Sequence[str] | None = None
) -> list[tuple[str, str, str]]:
    """(sentence, tense, topic): ``per_cell`` of each (tense, BBC topic), each from another article
    where the split allows, a fixed random choice among the labelled sentences."""
    ids = [id_ for id_ in split_ids("bbc", split) if topics is None or id_.split("/")[0] in topics]
    paragraphs = _paragraphs(ids)
    cells: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    docs = tense_pipeline().pipe([text for _, text in paragraphs], batch_size=64)
    for (id_, _), doc in zip(paragraphs, docs, strict=True):
        for sentence in doc.sents:
            tense = sentence_tense(sentence)
            if tense:
                cells[(tense, id_.split("/")[0])].append((id_, sentence.text))
    rng, chosen = random.Random(seed), []
    for (tense, topic), found in sorted(cells.items()):
        rng.shuffle(found)
        chosen += [(text, tense, topic) for text in _spread(found)[:per_cell]]
    return chosen


def _spread(found: list[tuple[str, str]]) -> list[str]:
    """The texts, the first of each article before any article's second."""
    seen: set[str] = set()
    firsts, rest = [], []
    for id_, text in found:
        (rest if id_ in seen else firsts).append(text)
        seen.add(id_)
    return firsts + rest
