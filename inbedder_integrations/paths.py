"""Where the package keeps its files, and whether a path stays inside a folder.

:func:`cache_root` is the one folder for converted models, file hashes and the embedding
cache.  A folder someone else wrote (a corpus, a model folder) may hold links that lead
elsewhere: to ``/etc``, to another user's files.  What reads a folder's files to
index or copy them asks :func:`leads_outside` first, so it never takes in a file
the folder does not hold.  Imports nothing of the package.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root", "leads_outside"]


def cache_root() -> Path:
    """Folder for converted models, file hashes and the embedding cache (``$INBEDDER_CACHE``
    overrides; else ``$XDG_CACHE_HOME/inbedder``, else ``~/.cache/inbedder``)."""
    explicit = os.environ.get("INBEDDER_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "inbedder"


def leads_outside(path: Path, real_root: Path) -> bool:
    """Whether ``path``, its links followed, lies outside ``real_root`` (a folder already
    resolved, so that a folder reached through a link of its own still holds its files)."""
    return not path.resolve().is_relative_to(real_root)
