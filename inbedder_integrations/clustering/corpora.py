"""The texts to cluster: built-in corpora, your folders and JSONL files, with labels where there are any.

Kept apart from the clustering itself because loading is about files and data
wheels, clustering about vectors; the RAG recipes load corpora too.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..documents import load_documents
from ..errors import InvalidArgumentError
from ..evaluation import loaders
from ..jsonl import read_jsonl

__all__ = [
    "BBC_INSTRUCTIONS",
    "BUILTIN_CORPORA",
    "MESSAGES_INSTRUCTIONS",
    "LabelledCorpus",
    "instructions_for",
    "load_corpus",
]

BUILTIN_CORPORA = ("bbc", "polarity", "lee_background", "messages")
BBC_INSTRUCTIONS = (
    "What is the topic of this news?",
    "Which country is this news about?",
    "Is the news good or bad for the people involved?",
)
MESSAGES_INSTRUCTIONS = ("How does the customer feel?", "What is the customer asking for?")
"""The questions the hand-written messages were written for: their labels are emotion and intent."""


@dataclass(frozen=True)
class LabelledCorpus:
    """Texts, with gold labels where the source has them."""

    name: str
    texts: list[str]
    labels: list[str] | None = None
    labels_from: str | None = None
    """What the labels are, as a report tells its reader ("folder names", "BBC News topics")."""

    def as_documents(self) -> list[dict[str, Any]]:
        """Rows for :meth:`InstructedCorpus.index`: id ``<name>-<position>``, the label as metadata."""
        return [
            {
                "text": text,
                "id": f"{self.name}-{position:05d}",
                "metadata": {"label": self.labels[position]} if self.labels else {},
            }
            for position, text in enumerate(self.texts)
        ]


def load_corpus(source: str | Path, *, limit: int | None = None, seed: int = 0) -> LabelledCorpus:
    """A built-in corpus (``bbc``, ``polarity``, ``lee_background``) or a folder/JSONL of your own.

    ``limit`` keeps a fixed random sample (for BBC: ``limit // 5`` articles per
    topic).  A folder's labels are its files' first-level subfolder names when
    every file sits in one; a JSONL file's come from a ``label`` field or
    ``metadata.label``.  ``messages``: the 75 hand-written customer messages
    (assets/eval-messages.json), labelled by their emotion.
    """
    if source == "bbc":
        texts, labels = loaders.load_bbc(per_topic=limit // 5 if limit else None, seed=seed)
        return LabelledCorpus("bbc", texts, labels, "the BBC News topics (the dataset's folders)")
    if source == "polarity":
        texts, labels = loaders.load_polarity()
        corpus = LabelledCorpus("polarity", texts, labels, "the reviews' polarity (pos, neg)")
        return _sample(corpus, limit, seed)
    if source == "messages":
        rows = loaders.load_messages()
        corpus = LabelledCorpus(
            "messages", [r["text"] for r in rows], [r["emotion"] for r in rows],
            "the messages' hand-written emotion labels (not their intent)",
        )  # fmt: skip
        return _sample(corpus, limit, seed)
    if source == "lee_background":
        path = loaders.package_file("gensim", "test_data/lee_background.cor")
        texts = [line.strip() for line in path.read_text(encoding="latin-1").splitlines() if line.strip()]
        return _sample(LabelledCorpus("lee_background", texts), limit, seed)
    return _sample(_load_own(source), limit, seed)


def _load_own(source: str | Path) -> LabelledCorpus:
    """A folder or JSONL file of the user's, labelled when every text carries a label."""
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{source}: no such file or folder, and not one of {BUILTIN_CORPORA}")
    documents = load_documents(path)
    if path.is_dir():
        folders = [Path(d.id).parts[0] if len(Path(d.id).parts) > 1 else None for d in documents]
        labels = None if None in folders else [str(f) for f in folders]
        source = "the folder names (each file's first-level subfolder)"
    else:
        raw = list(read_jsonl(path))
        found = [row.get("label", (row.get("metadata") or {}).get("label")) for row in raw]
        labels = None if None in found or len(found) != len(documents) else [str(x) for x in found]
        source = f"the 'label' field of {path.name}"
    return LabelledCorpus(path.stem, [d.text for d in documents], labels, source if labels else None)


def instructions_for(corpus: str | Path, given: Sequence[str] | None) -> list[str]:
    """The instructions given, or the built-in ones for ``bbc``; anything else must give some."""
    if given:
        return list(given)
    if corpus == "bbc":
        return list(BBC_INSTRUCTIONS)
    if corpus == "messages":
        return list(MESSAGES_INSTRUCTIONS)
    raise InvalidArgumentError(
        f"give at least one instruction for {str(corpus)!r} (only bbc and messages have default ones)"
    )


def _sample(corpus: LabelledCorpus, limit: int | None, seed: int) -> LabelledCorpus:
    """A fixed random ``limit`` of the texts, in their original order: reruns see the same texts."""
    if not limit or limit >= len(corpus.texts):
        return corpus
    keep = sorted(random.Random(seed).sample(range(len(corpus.texts)), limit))
    labels = [corpus.labels[i] for i in keep] if corpus.labels else None
    return LabelledCorpus(corpus.name, [corpus.texts[i] for i in keep], labels, corpus.labels_from)
