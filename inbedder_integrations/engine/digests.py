"""Content hashes of model files (memoised in the package's cache folder).

Hashes are what the fingerprint and the conversion manifests are made of; they
are memoised by the file's identity (path, size, mtime, device, inode and ctime)
so a multi-GB file is read once.  The mtime alone is not enough: ``cp -p``,
``rsync -a`` or ``os.utime`` rewrite a file and set its mtime back, but the
kernel sets the ctime to "now" on every write and every ``utime``, and no user
can set it back.  This module imports no torch, so the cache and the CLI's quick
commands stay fast to start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from ..paths import cache_root  # also importable from here, as before

__all__ = ["cache_root", "file_digest", "folder_digest", "write_json_atomically"]

logger = logging.getLogger(__name__)


def file_digest(path: Path) -> str:
    """sha256 of a file, remembered per file identity (:func:`_memo_key`) so big files hash once."""
    resolved = path.resolve()
    memo_key = _memo_key(resolved, resolved.stat())
    memo_file = cache_root() / "file-digests.json"
    memo = _read_memo(memo_file)
    if memo_key in memo:
        return memo[memo_key]
    digest = hashlib.sha256()
    with resolved.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    # Older states of this file are dropped, so the memo grows with files, not with rewrites.
    memo = {key: value for key, value in memo.items() if not key.startswith(f"{resolved}|")}
    memo[memo_key] = digest.hexdigest()
    try:
        write_json_atomically(memo_file, memo)
    except OSError as exc:  # a read-only cache folder: the digest is right, only not remembered
        logger.debug("file digest memo %s not written (%s)", memo_file, exc)
    return memo[memo_key]


def _read_memo(memo_file: Path) -> dict[str, str]:
    """The memo's entries; none when it is missing or not a JSON object of strings."""
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(memo, dict):
        return {}
    return {key: value for key, value in memo.items() if isinstance(value, str)}


def _memo_key(resolved: Path, stat: os.stat_result) -> str:
    """What changes whenever the bytes may have: size and mtime, and also the device, inode
    (a file replaced by another) and ctime (set by the kernel on every write or ``utime``, so
    a rewrite that restores the mtime still changes it)."""
    return f"{resolved}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_dev}|{stat.st_ino}|{stat.st_ctime_ns}"


def folder_digest(folder: Path) -> str:
    """Content hash of every file in a model or adapter folder but its docs (``*.md``) and
    dot-files: weights, configs and tokenizer files (``vocab.txt`` and ``merges.txt`` included)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".md" or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(file_digest(path).encode())
    return digest.hexdigest()


def write_json_atomically(path: Path, payload: Any) -> None:
    """Write to a user-only (0600) temporary file, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
