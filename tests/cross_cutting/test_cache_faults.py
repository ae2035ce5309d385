"""The embedding cache under faults: damaged, read-only, locked, and full files.

The rule the cache keeps: it never serves a wrong vector and never stops the
work it speeds up.  The damage fuzz follows SQLite's own corruption tests
(bit flips and truncations at random offsets of a real cache file).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.cache import EmbeddingCache
from inbedder_integrations.errors import InvalidArgumentError
from tests.conftest import record_numbers

FINGERPRINT, INSTRUCTION = "model@test", "What is the topic?"
TEXTS = [f"text number {n}" for n in range(120)]


def stored_vectors(dim: int = 64) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(len(TEXTS), dim)).astype(np.float32)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real cache file holding 120 vectors, checkpointed into the main file (no WAL left)."""
    path = tmp_path_factory.mktemp("pristine") / "cache.sqlite"
    cache = EmbeddingCache(path)
    cache.put_many(FINGERPRINT, INSTRUCTION, TEXTS, stored_vectors())
    cache.close()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("PRAGMA journal_mode=DELETE")
    return path


def damaged_copies(pristine: Path, folder: Path, count: int, seed: int = 0):
    """``count`` copies of the file, each with bit flips (1-8 bytes) or a truncation."""
    data = pristine.read_bytes()
    rng = random.Random(seed)
    for n in range(count):
        damaged = bytearray(data)
        if n % 4 == 3:
            damaged = damaged[: rng.randrange(len(damaged))]
        else:
            for _ in range(rng.randint(1, 8)):
                offset = rng.randrange(len(damaged))
                damaged[offset] ^= 1 << rng.randrange(8)
        path = folder / f"damaged-{n}.sqlite"
        path.write_bytes(bytes(damaged))
        yield path


def test_damaged_files_never_serve_a_wrong_vector_nor_raise(pristine: Path, tmp_path: Path, caplog) -> None:
    """300 damaged files: each call either serves the stored vector or none, and never raises.

    Some damage passes SQLite's open check and shows only later, in a read or a
    write: that file is then moved aside too, and the process goes on uncached.
    """
    expected = stored_vectors()
    new = np.ones((2, 64), np.float32)
    outcomes = {"kept": 0, "aside at open": 0, "aside later": 0}
    caplog.set_level(logging.WARNING, logger="inbedder_integrations.cache")
    for path in damaged_copies(pristine, tmp_path, 300):
        cache = EmbeddingCache(path)
        moved_at_open = bool(list(tmp_path.glob(f"{path.name}.corrupt-*")))
        for _ in range(2):  # the second round meets whatever the first one left
            found = cache.get_many(FINGERPRINT, INSTRUCTION, TEXTS)
            for vector, right in zip(found, expected, strict=True):
                assert vector is None or vector.tobytes() == right.tobytes(), f"{path.name}: wrong vector"
            cache.put_many(FINGERPRINT, INSTRUCTION, ["new a", "new b"], new)
        back = cache.get_many(FINGERPRINT, INSTRUCTION, ["new a", "new b"])
        assert all(v is None or v.tobytes() == new[0].tobytes() for v in back)
        if not cache.available:
            assert list(tmp_path.glob(f"{path.name}.corrupt-*")), f"{path.name}: damaged, not moved aside"
        outcomes["aside at open" if moved_at_open else "aside later" if not cache.available else "kept"] += 1
        cache.close()
    record_numbers("cache", "damaged files", outcomes)
    assert all(outcomes.values()), outcomes  # every path was exercised


def test_a_read_only_cache_serves_hits_and_skips_writes(
    pristine: Path, tmp_path: Path, caplog, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache.sqlite"
    path.write_bytes(pristine.read_bytes())
    path.chmod(0o400)
    before = path.read_bytes()
    # The tests run as root, for whom permission bits do not bind: report them as they read.
    real_access = __import__("os").access
    monkeypatch.setattr("os.access", lambda p, mode: False if Path(p) == path else real_access(p, mode))
    caplog.set_level(logging.WARNING, logger="inbedder_integrations.cache")
    cache = EmbeddingCache(path)
    assert cache.read_only and cache.available
    for _ in range(3):
        found = cache.get_many(FINGERPRINT, INSTRUCTION, TEXTS)
        assert [v.tobytes() for v in found] == [v.tobytes() for v in stored_vectors()]  # type: ignore[union-attr]
        cache.put_many(FINGERPRINT, INSTRUCTION, ["new"], np.ones((1, 64), np.float32))
    assert caplog.text.count("read-only") == 1, "warned once"
    cache.close()
    assert path.read_bytes() == before, "nothing was written"


FULL_DISK = textwrap.dedent(
    """
    import resource, signal, sys
    import numpy as np
    from inbedder_integrations.cache import EmbeddingCache
    path, fingerprint, instruction = sys.argv[1:4]
    texts = [f"text number {n}" for n in range(120)]
    cache = EmbeddingCache(path)
    # From here on no file may grow by a byte: every write fails as on a full disk.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
    for _ in range(3):
        hits = sum(v is not None for v in cache.get_many(fingerprint, instruction, texts))
        cache.put_many(fingerprint, instruction, ["new"], np.ones((1, 64), np.float32))
        print(hits, int(cache.available), flush=True)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_cache_that_cannot_be_written_still_serves_every_hit(pristine: Path, tmp_path: Path) -> None:
    """On a full disk every hit's ``last_used`` update fails: the hits are served regardless."""
    path = tmp_path / "cache.sqlite"
    path.write_bytes(pristine.read_bytes())
    run = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path), FINGERPRINT, INSTRUCTION],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["120", "1"] * 3, (run.stdout, run.stderr)
    assert run.stderr.count("could not be written") == 1, run.stderr
    found = EmbeddingCache(path).get_many(FINGERPRINT, INSTRUCTION, TEXTS)
    assert [v.tobytes() for v in found] == [v.tobytes() for v in stored_vectors()]  # type: ignore[union-attr]


HOLDER = textwrap.dedent(
    """
    import sqlite3, sys, time
    connection = sqlite3.connect(sys.argv[1], isolation_level=None)
    connection.execute("PRAGMA locking_mode=EXCLUSIVE")
    connection.execute("BEGIN EXCLUSIVE")
    connection.execute("UPDATE vectors SET last_used = 0")
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    connection.execute("COMMIT")
    print("committed", flush=True)
    """
)


def test_a_locked_cache_is_waited_for_then_skipped_never_moved(
    pristine: Path, tmp_path: Path, caplog
) -> None:
    path = tmp_path / "cache.sqlite"
    path.write_bytes(pristine.read_bytes())
    EmbeddingCache(path).close()  # in WAL mode, as the package leaves it
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), "4"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    caplog.set_level(logging.WARNING, logger="inbedder_integrations.cache")
    started = time.monotonic()
    cache = EmbeddingCache(path, timeout=0.5)
    found = cache.get_many(FINGERPRINT, INSTRUCTION, TEXTS)
    cache.put_many(FINGERPRINT, INSTRUCTION, ["new"], np.ones((1, 64), np.float32))
    assert time.monotonic() - started < 3.5, "a lock is waited for briefly, not for the holder's whole hold"
    assert all(v is None or v.tobytes() == w.tobytes() for v, w in zip(found, stored_vectors(), strict=True))
    assert "locked" in caplog.text
    assert holder.stdout.readline().strip() == "committed" and holder.wait(timeout=30) == 0
    assert not list(tmp_path.glob("*.corrupt-*")), "a locked file is not a damaged one"
    with sqlite3.connect(path) as connection:  # the holder's write landed: its WAL was not deleted
        assert connection.execute("SELECT max(last_used) FROM vectors").fetchone()[0] == 0
    cache.close()


def test_max_bytes_bounds_the_file_on_disk(tmp_path: Path) -> None:
    """Rows cost more on disk than their vectors; the limit counts the file's used pages."""
    limit = 1_000_000
    cache = EmbeddingCache(tmp_path / "cache.sqlite", max_bytes=limit)
    vectors = np.random.default_rng(1).normal(size=(50, 576)).astype(np.float32)  # 2,304 bytes each
    for batch in range(40):  # 2,000 vectors: 4.6 MB of vectors
        cache.put_many(FINGERPRINT, INSTRUCTION, [f"{batch}-{n}" for n in range(50)], vectors)
    info = cache.info()
    assert info["used_bytes"] <= 1.1 * limit, info  # the holes of the last eviction are not all full yet
    assert 250 < info["vectors"] < limit / 2304, info
    newest = cache.get_many(FINGERPRINT, INSTRUCTION, [f"39-{n}" for n in range(50)])
    assert all(v is not None for v in newest), "the least recently used rows went, not the newest"
    cache.close()
    with sqlite3.connect(tmp_path / "cache.sqlite") as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert (
        tmp_path / "cache.sqlite"
    ).stat().st_size <= 1.5 * limit  # pages freed at eviction stay in the file


def test_memory_is_not_a_cache_path() -> None:
    with pytest.raises(InvalidArgumentError, match="':memory:' would cache nothing"):
        EmbeddingCache(":memory:")


def test_the_engine_goes_on_uncached_when_its_cache_breaks(engine: InBedder, tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cached = InBedder.from_pretrained("default", dtype="float32", cache=path)
    texts = ["The striker scored twice.", "Shares fell again."]
    first = cached.embed(texts, INSTRUCTION)
    with path.open("r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xa5" * (path.stat().st_size - 4096))
    again = cached.embed(texts, INSTRUCTION)
    np.testing.assert_array_equal(again, first)
    np.testing.assert_allclose(again, engine.embed(texts, INSTRUCTION), atol=1e-6)


def test_a_read_only_cache_folder_does_not_stop_hashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file-digest memo lives in the cache folder: when it cannot be written, the digest
    is still computed (and right), only not remembered."""
    from inbedder_integrations.engine import digests

    def refuse(path: Path, payload: object) -> None:
        raise PermissionError(13, "Read-only file system", str(path))

    monkeypatch.setattr(digests, "write_json_atomically", refuse)
    monkeypatch.setenv("INBEDDER_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"some weights")
    assert digests.file_digest(weights) == __import__("hashlib").sha256(b"some weights").hexdigest()
