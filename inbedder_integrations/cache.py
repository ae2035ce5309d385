"""An on-disk embedding cache: a vector once computed is a lookup forever after.

Every new instruction re-embeds a corpus, and re-indexing or re-clustering
the same texts would otherwise pay for the model again.  Vectors are stored
in one SQLite file keyed by (engine fingerprint, instruction, sha256 of the
text): a change of model, adapter, dtype, pooling, layer, template or
max_length changes the fingerprint, so a stale vector is never served.

Writes are SQLite transactions (a crash leaves the previous state), the file
is created readable by its owner only, every row carries a CRC of its bytes
(a row that fails it is dropped and recomputed), and a file SQLite cannot read
is moved aside and rebuilt.  The least recently used rows are evicted past
``max_bytes``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .engine.loading import cache_root
from .errors import InvalidArgumentError, positive_int
from .shared import SharedRegistry

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EmbeddingCache",
    "default_cache_path",
    "shared_cache",
    "text_sha256",
]


logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024**3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    fingerprint TEXT NOT NULL,
    instruction TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    vector BLOB NOT NULL,
    crc INTEGER NOT NULL,
    last_used REAL NOT NULL,
    PRIMARY KEY (fingerprint, instruction, text_sha256)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vectors_last_used ON vectors (last_used);
"""


def default_cache_path() -> Path:
    """``$INBEDDER_EMBEDDING_CACHE``, else ``embeddings.sqlite`` in the cache folder
    (``~/.cache/inbedder``, moved by ``$INBEDDER_CACHE``)."""
    explicit = os.environ.get("INBEDDER_EMBEDDING_CACHE")
    return Path(explicit).expanduser() if explicit else cache_root() / "embeddings.sqlite"


def text_sha256(text: str) -> str:
    """The hex sha256 of ``text`` as strict UTF-8: the one text hash of the package.

    Cache keys and the text hashes stored with Chroma rows
    (:attr:`~inbedder_integrations.corpus.CorpusDocument.text_hash`) both come from
    here.  A lone surrogate (``"\\ud800"``) has no UTF-8 form: such a text is refused
    with an :class:`~inbedder_integrations.errors.InvalidArgumentError` (the engine
    refuses it too), never hashed under some private encoding.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(
            f"text is not valid Unicode: lone surrogate {text[exc.start]!r} at character {exc.start} "
            "cannot be encoded as UTF-8, so it has no sha256; decode the source with errors='replace'"
        ) from None
    return hashlib.sha256(data).hexdigest()


class EmbeddingCache:
    """Raw (unnormalised) float32 vectors by fingerprint, instruction and text hash."""

    def __init__(self, path: str | Path | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        positive_int("max_bytes", max_bytes)
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._connection = self._connect()

    # ------------------------------------------------------------------ opening

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            descriptor = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(descriptor)
        try:
            return self._open_checked()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            logger.warning(
                "embedding cache %s is unreadable (%s); moved to %s and rebuilt", self.path, exc, aside
            )
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self.path.rename(aside)
            descriptor = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(descriptor)
            return self._open_checked()

    def _open_checked(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
            connection.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    # ------------------------------------------------------------------ reading and writing

    def get_many(self, fingerprint: str, instruction: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        """The stored vector of each text, or None where there is none (or it failed its CRC)."""
        hashes = [text_sha256(text) for text in texts]
        found: dict[str, np.ndarray] = {}
        damaged: list[str] = []
        with self._lock:
            for start in range(0, len(hashes), 500):
                chunk = sorted(set(hashes[start : start + 500]))
                rows = self._connection.execute(
                    "SELECT text_sha256, vector, crc FROM vectors WHERE fingerprint = ? AND instruction = ?"
                    f" AND text_sha256 IN ({','.join('?' * len(chunk))})",
                    [fingerprint, instruction, *chunk],
                ).fetchall()
                for text_hash, blob, crc in rows:
                    if zlib.crc32(blob) == crc and len(blob) % 4 == 0 and blob:
                        found[text_hash] = np.frombuffer(blob, dtype=np.float32).copy()
                    else:
                        damaged.append(text_hash)
            with self._connection:
                if damaged:
                    logger.warning("embedding cache: %d damaged rows dropped", len(damaged))
                    self._connection.executemany(
                        "DELETE FROM vectors WHERE fingerprint = ? AND instruction = ? AND text_sha256 = ?",
                        [(fingerprint, instruction, h) for h in damaged],
                    )
                self._connection.executemany(
                    "UPDATE vectors SET last_used = ? WHERE fingerprint = ? AND instruction = ? "
                    "AND text_sha256 = ?",
                    [(time.time(), fingerprint, instruction, h) for h in found],
                )
        return [found.get(text_hash) for text_hash in hashes]

    def put_many(self, fingerprint: str, instruction: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one float32 vector per text (one transaction), then evict past ``max_bytes``."""
        if len(texts) != len(vectors):
            raise InvalidArgumentError(f"{len(texts)} texts but {len(vectors)} vectors")
        now = time.time()
        rows = []
        for text, vector in zip(texts, vectors, strict=True):
            blob = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
            rows.append((fingerprint, instruction, text_sha256(text), blob, zlib.crc32(blob), now))
        with self._lock, self._connection:
            self._connection.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?, ?)", rows)
            self._evict()

    def _evict(self) -> None:
        total = self._stored_bytes()
        if total <= self.max_bytes:
            return
        # Drop the least recently used rows until a tenth below the limit (no churn at the edge).
        target = int(self.max_bytes * 0.9)
        cursor = self._connection.execute(
            "SELECT fingerprint, instruction, text_sha256, length(vector) FROM vectors ORDER BY last_used"
        )
        doomed = []
        for fingerprint, instruction, text_hash, size in cursor:
            if total <= target:
                break
            doomed.append((fingerprint, instruction, text_hash))
            total -= size
        self._connection.executemany(
            "DELETE FROM vectors WHERE fingerprint = ? AND instruction = ? AND text_sha256 = ?", doomed
        )

    def _stored_bytes(self) -> int:
        return int(
            self._connection.execute("SELECT coalesce(sum(length(vector)), 0) FROM vectors").fetchone()[0]
        )

    # ------------------------------------------------------------------ management

    def info(self) -> dict[str, Any]:
        """What ``inbedder cache info`` prints: where, how big, and what is in it."""
        with self._lock:
            rows = self._connection.execute(
                "SELECT fingerprint, count(*), count(DISTINCT instruction), sum(length(vector)) "
                "FROM vectors GROUP BY fingerprint ORDER BY fingerprint"
            ).fetchall()
        return {
            "path": str(self.path),
            "file_bytes": self.path.stat().st_size if self.path.exists() else 0,
            "max_bytes": self.max_bytes,
            "vectors": sum(row[1] for row in rows),
            "vector_bytes": sum(row[3] for row in rows),
            "models": [
                {"fingerprint": fingerprint, "vectors": count, "instructions": instructions}
                for fingerprint, count, instructions, _ in rows
            ],
        }

    def clear(self, fingerprint: str | None = None) -> int:
        """Delete every vector (or one fingerprint's); returns how many were deleted."""
        with self._lock, self._connection:
            if fingerprint is None:
                deleted = self._connection.execute("DELETE FROM vectors").rowcount
            else:
                deleted = self._connection.execute(
                    "DELETE FROM vectors WHERE fingerprint = ?", (fingerprint,)
                ).rowcount
        with self._lock:
            self._connection.execute("VACUUM")
        return int(deleted)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"


#: Open caches by file: released (not closed: engines may still use them) by ``shared.clear``.
_SHARED: SharedRegistry[Path, EmbeddingCache] = SharedRegistry("embedding caches")


def shared_cache(cache: EmbeddingCache | str | Path | None = None) -> EmbeddingCache:
    """One open cache per file in the process (``None``: the default file)."""
    if isinstance(cache, EmbeddingCache):
        return cache
    path = (Path(cache).expanduser() if cache is not None else default_cache_path()).resolve()
    return _SHARED.get_or_create(path, lambda: EmbeddingCache(path))
