"""An on-disk embedding cache: a vector once computed is a lookup forever after.

Every new instruction re-embeds a corpus, and re-indexing or re-clustering
the same texts would otherwise pay for the model again.  Vectors are stored
in one SQLite file keyed by (the engine's cache key, instruction, sha256 of
the text).  The cache key is the fingerprint (model, adapter, pooling, layer,
template, max_length...) plus the dtype and device type the vector was
computed with, so a stale vector, or one computed in another dtype, is never
served.  (Rows written by release 0.1.0, keyed by its fingerprints, are simply
never found again: a miss, recomputed, and evicted in time like any old row.)

Writes are SQLite transactions (a crash leaves the previous state), the file
is created readable by its owner only, every row carries a CRC of its bytes
(a row that fails it is dropped and recomputed), and a file SQLite cannot read
is moved aside and rebuilt.  The least recently used rows are evicted past
``max_bytes``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import numpy as np

from .errors import InvalidArgumentError, positive_int
from .hashing import text_sha256  # also importable from here, as before
from .paths import cache_root
from .shared import SharedRegistry

__all__ = [
    "DEFAULT_MAX_BYTES",
    "EmbeddingCache",
    "check_cache_path",
    "default_cache_path",
    "shared_cache",
    "text_sha256",
]


logger = logging.getLogger(__name__)
T = TypeVar("T")

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


def check_cache_path(path: str | Path | None) -> None:
    """Refuse ``:memory:``: SQLite's in-memory name would become a stray file here, caching nothing."""
    if path is not None and str(path) == ":memory:":
        raise InvalidArgumentError(
            "the embedding cache is a file: ':memory:' would cache nothing across calls; "
            "give a file path, or no cache (cache=False, --no-cache)"
        )


class EmbeddingCache:
    """Raw (unnormalised) float32 vectors by cache key (fingerprint, dtype, device), instruction, text hash.

    The cache never stops the work it speeds up.  A file that is damaged (at open
    or later) is moved aside and the process goes on uncached; a read-only file is
    read but not written; a file locked by another process is waited for briefly,
    then skipped for that call.  A write that fails for want of room (a full disk)
    pauses writes for a minute but never costs a read: hits are still served.  Each
    is logged once as a warning.
    """

    def __init__(
        self, path: str | Path | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = 10.0
    ) -> None:
        positive_int("max_bytes", max_bytes)
        check_cache_path(path)
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.read_only = False
        self._writes_paused_until = 0.0  # monotonic time: writes failed for want of room
        self._warned: set[str] = set()
        self._room = 0.0  # bytes writable before the size is checked again (see _evict)
        self._disk_per_vector_byte = 1.0
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = self._connect()

    @property
    def available(self) -> bool:
        """False once the cache has gone out of use (damaged, locked at open, unreadable)."""
        return self._connection is not None

    # ------------------------------------------------------------------ opening

    def _connect(self) -> sqlite3.Connection | None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            if not self.path.is_file():
                self._warn("unusable", f"cannot create it ({exc}); going on uncached")
                return None
        self.read_only = not (os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK))
        try:
            connection = self._open_checked()
        except sqlite3.DatabaseError as exc:
            if _failure(exc) != "corrupt":
                self._warn(_failure(exc), f"cannot be opened ({exc}); going on uncached")
                return None
            if not self._move_aside(exc):
                return None
            connection = self._open_checked()
        if self.read_only:
            self._warn("read-only", _READ_ONLY)
        return connection

    def _open_checked(self) -> sqlite3.Connection:
        if self.read_only:
            uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
            connection = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=self.timeout)
        else:
            connection = sqlite3.connect(self.path, check_same_thread=False, timeout=self.timeout)
        try:
            if not self.read_only:
                # Large pages for a new file (ignored for an existing one): a 576-d vector (2.3 kB)
                # then sits in its b-tree page instead of spilling to an overflow page of its own.
                connection.execute("PRAGMA page_size=16384")
                connection.execute("PRAGMA journal_mode=WAL")
            if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise _DamagedError("quick_check failed")
            if not self.read_only:
                connection.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    def _move_aside(self, exc: Exception) -> bool:
        """Rename a damaged file (and drop its WAL) unless another process has it open."""
        if self.read_only or _open_elsewhere(self.path):
            self._warn("corrupt", f"is damaged ({exc}) but in use elsewhere or read-only; going on uncached")
            return False
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        try:
            self.path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as error:
            self._warn(
                "corrupt", f"is damaged ({exc}) and could not be moved aside ({error}); going on uncached"
            )
            return False
        logger.warning("embedding cache %s is damaged (%s); moved to %s and rebuilt", self.path, exc, aside)
        return True

    def _warn(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning("embedding cache %s %s", self.path, message)

    # ------------------------------------------------------------------ reading and writing

    def get_many(self, key: str, instruction: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        """The stored vector of each text under ``key`` (an engine's ``cache_key``), or None where
        there is none (or it failed its CRC, or the cache could not be read just now)."""
        hashes = [text_sha256(text) for text in texts]
        found = self._use("read", lambda c: self._read(c, key, instruction, hashes), {})
        return [found.get(text_hash) for text_hash in hashes]

    def _read(
        self, connection: sqlite3.Connection, key: str, instruction: str, hashes: list[str]
    ) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        damaged: list[str] = []
        for start in range(0, len(hashes), 500):
            chunk = sorted(set(hashes[start : start + 500]))
            rows = connection.execute(
                "SELECT text_sha256, vector, crc FROM vectors WHERE fingerprint = ? AND instruction = ?"
                f" AND text_sha256 IN ({','.join('?' * len(chunk))})",
                [key, instruction, *chunk],
            ).fetchall()
            for text_hash, blob, crc in rows:
                # SQLite types each value, not each column: damage can turn a blob into an int.
                if isinstance(blob, bytes) and blob and len(blob) % 4 == 0 and zlib.crc32(blob) == crc:
                    found[text_hash] = np.frombuffer(blob, dtype=np.float32).copy()
                else:
                    damaged.append(text_hash)
        if damaged:
            logger.warning("embedding cache: %d damaged rows ignored", len(damaged))
        if self._writable():
            try:
                self._note_use(connection, key, instruction, found, damaged)
            except sqlite3.DatabaseError as exc:  # bookkeeping only: the hits are served regardless
                self._write_failed(exc)
        return found

    def _note_use(
        self,
        connection: sqlite3.Connection,
        key: str,
        instruction: str,
        found: dict[str, Any],
        damaged: list[str],
    ) -> None:
        """Drop the damaged rows and mark the found ones used (for eviction), in one transaction."""
        with connection:
            connection.executemany(
                "DELETE FROM vectors WHERE fingerprint = ? AND instruction = ? AND text_sha256 = ?",
                [(key, instruction, h) for h in damaged],
            )
            connection.executemany(
                "UPDATE vectors SET last_used = ? WHERE fingerprint = ? AND instruction = ? "
                "AND text_sha256 = ?",
                [(time.time(), key, instruction, h) for h in found],
            )

    def _writable(self) -> bool:
        return not self.read_only and time.monotonic() >= self._writes_paused_until

    def _write_failed(self, exc: sqlite3.DatabaseError) -> None:
        """A write failed, which must never cost a read: for want of room writes pause, a lock
        or a read-only file skips them; only damage (moved aside by :meth:`_use`) goes further."""
        kind = _failure(exc)
        if kind == "corrupt":
            raise exc
        if kind == "environment":
            self._writes_paused_until = time.monotonic() + _WRITE_PAUSE_SECONDS
            self._warn("full", f"could not be written ({exc}); hits are still served, writes paused")
        else:
            self._failed("write", exc)

    def put_many(self, key: str, instruction: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store one float32 vector per text (one transaction), then evict past ``max_bytes``."""
        if len(texts) != len(vectors):
            raise InvalidArgumentError(f"{len(texts)} texts but {len(vectors)} vectors")
        now = time.time()
        rows = []
        for text, vector in zip(texts, vectors, strict=True):
            blob = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
            rows.append((key, instruction, text_sha256(text), blob, zlib.crc32(blob), now))
        if self._writable():
            self._use("write", lambda c: self._write(c, rows), None)

    def _write(self, connection: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        try:
            self._insert(connection, rows)
        except sqlite3.DatabaseError as exc:
            self._write_failed(exc)

    def _insert(self, connection: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        with connection:
            connection.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?, ?)", rows)
            if self._room > 0:  # holes left by the last eviction are being filled: no check needed
                self._room -= sum(len(row[3]) for row in rows) * self._disk_per_vector_byte
                return
            used = _used_bytes(connection)
            if used > self.max_bytes:
                self._evict(connection, used)

    def _evict(self, connection: sqlite3.Connection, used: int) -> None:
        """Drop the least recently used rows until a fifth of the limit is free (no churn at the edge).

        Size is the file's pages in use (keys, b-tree and page slack included), read
        in O(1); the one table scan happens here, when the limit is crossed.  Deleted
        rows leave holes inside pages rather than free pages: later writes fill them,
        and the size is checked again once they would be full.
        """
        count, vector_bytes = connection.execute(
            "SELECT count(*), coalesce(sum(length(vector)), 0) FROM vectors"
        ).fetchone()
        if not count:
            return
        self._disk_per_vector_byte = used / max(1, vector_bytes)
        to_free = used - int(self.max_bytes * 0.8)
        cursor = connection.execute(
            "SELECT fingerprint, instruction, text_sha256, length(vector) FROM vectors ORDER BY last_used"
        )
        doomed, freed = [], 0.0
        for fingerprint, instruction, text_hash, size in cursor:
            if freed >= to_free:
                break
            doomed.append((fingerprint, instruction, text_hash))
            freed += size * self._disk_per_vector_byte
        connection.executemany(
            "DELETE FROM vectors WHERE fingerprint = ? AND instruction = ? AND text_sha256 = ?", doomed
        )
        self._room = freed - max(0, used - self.max_bytes)

    def _use(self, what: str, operation: Callable[[sqlite3.Connection], T], fallback: T) -> T:
        """Run ``operation`` on the connection; an SQLite failure costs this call its cache, never
        the caller's work: a damaged file is moved aside, a locked one skipped, a read-only one read."""
        with self._lock:
            connection = self._connection
            if connection is None:
                return fallback
            try:
                return operation(connection)
            except sqlite3.DatabaseError as exc:
                self._failed(what, exc)
                return fallback

    def _failed(self, what: str, exc: sqlite3.DatabaseError) -> None:
        kind = _failure(exc)
        if kind == "busy":
            self._warn("busy", f"is locked by another process; {what}s skipped while it is ({exc})")
            return
        if kind == "read-only":
            self.read_only = True
            self._warn("read-only", _READ_ONLY)
            return
        assert self._connection is not None
        self._connection.close()
        self._connection = None
        if kind == "corrupt":
            self._move_aside(exc)
        else:
            self._warn(kind, f"failed on {what} ({exc}); going on uncached")

    # ------------------------------------------------------------------ management

    def info(self) -> dict[str, Any]:
        """What ``inbedder cache info`` prints: where, how big, and what is in it."""
        rows = self._use(
            "read",
            lambda c: c.execute(
                "SELECT fingerprint, count(*), count(DISTINCT instruction), sum(length(vector)) "
                "FROM vectors GROUP BY fingerprint ORDER BY fingerprint"
            ).fetchall(),
            [],
        )
        used = self._use("read", _used_bytes, 0)
        return {
            "path": str(self.path),
            "file_bytes": self.path.stat().st_size if self.path.exists() else 0,
            "used_bytes": used,
            "max_bytes": self.max_bytes,
            "vectors": sum(row[1] for row in rows),
            "vector_bytes": sum(row[3] for row in rows),
            "models": [
                {"fingerprint": fingerprint, "vectors": count, "instructions": instructions}
                for fingerprint, count, instructions, _ in rows
            ],
        }

    def clear(self, fingerprint: str | None = None) -> int:
        """Delete every vector, or those of one fingerprint (in every dtype and device) or of
        one cache key; returns how many were deleted."""
        if self.read_only:
            raise PermissionError(f"embedding cache {self.path} is read-only: nothing can be deleted")

        def delete(connection: sqlite3.Connection) -> int:
            with connection:
                if fingerprint is None:
                    deleted = connection.execute("DELETE FROM vectors").rowcount
                else:
                    deleted = connection.execute(
                        "DELETE FROM vectors WHERE fingerprint = ? OR substr(fingerprint, 1, ?) = ?",
                        (fingerprint, len(fingerprint) + 1, fingerprint + "|"),
                    ).rowcount
            connection.execute("VACUUM")
            return int(deleted)

        return self._use("clear", delete, 0)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.path)!r})"


class _DamagedError(sqlite3.DatabaseError):
    """SQLite opened the file, but its own integrity check failed."""


_READ_ONLY = "is read-only: vectors found there are served, new ones not stored"
#: Seconds writes stay paused after one failed for want of room.
_WRITE_PAUSE_SECONDS = 60.0
#: Failures of the machine, not of the file: going uncached is right, moving the file is not.
_ENVIRONMENT_ERRORS = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_NOMEM", "SQLITE_PERM")
_ENVIRONMENT_MESSAGES = ("disk i/o", "is full", "unable to open", "out of memory", "permission")


def _failure(exc: sqlite3.DatabaseError) -> str:
    """What an SQLite error means for the cache: busy, read-only, environment, or corrupt.

    Whatever is neither a lock, a read-only file nor the machine is the file's
    content: damage can surface as "malformed", as a key that is not UTF-8, or as
    a schema that lost a column.
    """
    name = getattr(exc, "sqlite_errorname", "") or ""
    message = str(exc).lower()
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in message:
        return "busy"
    if name.startswith("SQLITE_READONLY") or "readonly" in message:
        return "read-only"
    if name.startswith(_ENVIRONMENT_ERRORS) or any(sign in message for sign in _ENVIRONMENT_MESSAGES):
        return "environment"
    return "corrupt"


def _used_bytes(connection: sqlite3.Connection) -> int:
    """Bytes of the file's pages in use (free pages left by deletes excluded): O(1), no table scan."""
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    free = connection.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


def _open_elsewhere(path: Path) -> bool:
    """Whether another process holds this SQLite file open in WAL mode (its ``-shm`` lock byte).

    Every connection to a WAL database keeps a shared lock on byte 128 of the
    ``-shm`` file while open.  Where locks cannot be probed (no ``fcntl``), the
    answer is "yes": a file is never moved from under another process.
    """
    shm = Path(f"{path}-shm")
    if not shm.exists():
        return False
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return True
    try:
        with shm.open("rb+") as handle:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
            fcntl.lockf(handle, fcntl.LOCK_UN, 1, 128)
    except OSError:
        return True
    return False


#: Open caches by file: released (not closed: engines may still use them) by ``shared.clear``.
_SHARED: SharedRegistry[Path, EmbeddingCache] = SharedRegistry("embedding caches")


def shared_cache(cache: EmbeddingCache | str | Path | None = None) -> EmbeddingCache:
    """One open cache per file in the process (``None``: the default file)."""
    if isinstance(cache, EmbeddingCache):
        return cache
    check_cache_path(cache)
    path = (Path(cache).expanduser() if cache is not None else default_cache_path()).resolve()
    return _SHARED.get_or_create(path, lambda: EmbeddingCache(path))
