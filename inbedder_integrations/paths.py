"""Whether a path stays inside a folder once its links are followed.

A folder someone else wrote (a corpus, a model folder) may hold links that lead
elsewhere: to ``/etc``, to another user's files.  What reads a folder's files to
index or copy them asks :func:`leads_outside` first, so it never takes in a file
the folder does not hold.  Imports nothing of the package.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["leads_outside"]


def leads_outside(path: Path, real_root: Path) -> bool:
    """Whether ``path``, its links followed, lies outside ``real_root`` (a folder already
    resolved, so that a folder reached through a link of its own still holds its files)."""
    return not path.resolve().is_relative_to(real_root)
