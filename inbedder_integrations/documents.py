"""Documents before they reach a store: validated rows, stable ids, and the files they come from.

Everything here runs before any model loads or any write: a corpus is checked
whole (:func:`to_documents`), so a bad row is named by its position in the
caller's input and its id, and a refused corpus writes nothing.  Folders are
read without leaving them (:func:`text_files`), lines are cut at ``"\n"`` alone.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError, InvalidTypeError
from .hashing import text_sha256
from .jsonl import read_jsonl, read_lines
from .paths import leads_outside
from .source_tokens import LEGACY_SOURCES_KEY, SOURCES_KEY
from .validation import validate_unicode

__all__ = [
    "INSTRUCTION_KEY",
    "SOURCES_KEY",
    "TEXT_HASH_KEY",
    "TEXT_SUFFIXES",
    "CorpusDocument",
    "decode_text",
    "load_documents",
    "read_text_file",
    "text_files",
    "to_documents",
]

logger = logging.getLogger(__name__)

#: The metadata key under which every stored row keeps the sha256 of its text.
TEXT_HASH_KEY = "inbedder_text_sha256"
#: The metadata key that names an instruction: on a corpus's collection (the instruction it was
#: indexed under) and on a routed hit (the instruction it was found under).
INSTRUCTION_KEY = "inbedder_instruction"
#: The files a folder corpus is made of (the suffix in any case: ``.TXT`` too).
TEXT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class CorpusDocument:
    """A text with a stable id and scalar metadata."""

    text: str
    id: str
    metadata: dict[str, str | int | float | bool] = field(default_factory=dict)
    repeats: tuple[dict[str, str | int | float | bool], ...] = field(default=(), compare=False, repr=False)
    """The metadata of earlier occurrences of this id in the same input (``metadata`` is the last's)."""

    def sources(self, source_key: str) -> list[str | int | float | bool]:
        """The ``source_key`` values of every occurrence: each of those sources holds this text."""
        return [meta[source_key] for meta in (*self.repeats, self.metadata) if source_key in meta]

    @cached_property
    def text_hash(self) -> str:
        """:func:`~inbedder_integrations.cache.text_sha256` of the text (the cache's key too)."""
        return text_sha256(self.text)


def to_documents(items: Iterable[str | Mapping[str, Any]]) -> list[CorpusDocument]:
    """Validate a whole corpus before anything is written.

    A bad row is named by its position in ``items`` and its id.  Metadata must be
    what Chroma stores unchanged: str, bool, finite floats and 64-bit ints under
    non-reserved keys; anything else is refused here, not dropped or rounded later.
    """
    documents: dict[str, CorpusDocument] = {}
    for index, item in enumerate(items):
        if isinstance(item, str):
            text, given_id, metadata = item, None, {}
        elif isinstance(item, Mapping):
            text, given_id, metadata = item.get("text"), item.get("id"), item.get("metadata") or {}
        else:
            raise InvalidTypeError(
                f"documents[{index}] must be a str or a mapping with 'text', got {type(item).__name__}"
            )
        if not isinstance(text, str):
            raise InvalidTypeError(f"documents[{index}]['text'] must be a str, got {type(text).__name__}")
        row = f"documents[{index}]"
        validate_unicode(text, row if isinstance(item, str) else f"{row}['text']")
        if given_id is not None and (not isinstance(given_id, str) or not given_id):
            raise InvalidTypeError(f"documents[{index}]['id'] must be a non-empty str, got {given_id!r}")
        if given_id is not None:
            validate_unicode(given_id, f"{row}['id']")
        document_id = given_id or _content_id(text)
        checked = _checked_metadata(metadata, f"{row} (id {document_id!r})")
        document = CorpusDocument(text, document_id, checked)
        earlier = documents.get(document.id)
        if earlier is not None:
            if given_id is not None and earlier.text != text:
                raise InvalidArgumentError(f"documents[{index}] reuses id {given_id!r} for a different text")
            # The same text twice: indexed once, the later metadata winning (as two upserts
            # in order would leave it), every occurrence's source holding it.
            document = CorpusDocument(text, document_id, checked, (*earlier.repeats, earlier.metadata))
        documents[document.id] = document
    return list(documents.values())


_INT64 = (-(2**63), 2**63 - 1)
#: Key prefixes Chroma keeps for itself (``chroma:document``) or reads as operators (``$and``, ``#document``).
_RESERVED_PREFIXES = ("chroma:", "$", "#")
#: Keys this package writes in every row (the sources' record, see :mod:`.source_tokens`).
_OWN_KEYS = (TEXT_HASH_KEY, SOURCES_KEY, LEGACY_SOURCES_KEY)


def _checked_metadata(metadata: object, row: str) -> dict[str, str | int | float | bool]:
    """``metadata`` if Chroma stores every key and value as given, else an error naming the first bad one."""
    if not isinstance(metadata, Mapping):
        raise InvalidTypeError(f"{row}['metadata'] must be a mapping, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgumentError(f"{row}['metadata'] has key {key!r}: keys must be non-empty strings")
        validate_unicode(key, f"{row}['metadata'] key")
        if key.startswith(_RESERVED_PREFIXES) or key in _OWN_KEYS:
            raise InvalidArgumentError(
                f"{row}['metadata'] key {key!r} is reserved (by Chroma: 'chroma:', '$', '#' prefixes; "
                f"by this package: {', '.join(map(repr, _OWN_KEYS))}); rename it"
            )
        where = f"{row}['metadata'][{key!r}]"
        if isinstance(value, bool):
            continue
        if isinstance(value, str):
            validate_unicode(value, where)
        elif isinstance(value, int):
            if not _INT64[0] <= value <= _INT64[1]:
                raise InvalidArgumentError(
                    f"{where} = {value} does not fit in a 64-bit int; store it as a str"
                )
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidArgumentError(f"{where} = {value}: Chroma cannot store NaN or infinities")
        else:
            raise InvalidTypeError(f"{where} must be a str, int, float or bool, got {type(value).__name__}")
    return dict(metadata)


def _content_id(text: str) -> str:
    return "sha256-" + text_sha256(text)[:32]


def load_documents(source: str | Path, *, follow_symlinks: bool = False) -> list[CorpusDocument]:
    """A folder of .txt/.md files (id = relative path), a JSONL file, or ``-`` (stdin).

    JSONL rows carry ``text`` and optionally ``id`` and ``metadata``; stdin is
    JSONL when its first line is a JSON object, else one text per line.  A
    folder is read as :func:`text_files` lists it.
    """
    if str(source) == "-":
        lines = list(read_lines("-"))
        if lines and lines[0].lstrip().startswith("{"):
            return to_documents(read_jsonl(lines, "stdin", objects=False))
        return to_documents(line for line in lines if line.strip())
    path = Path(source)
    if path.is_dir():
        files = text_files(path, follow_symlinks=follow_symlinks)
        return to_documents(
            {
                "text": read_text_file(file),
                "id": str(file.relative_to(path)),
                "metadata": {"source": file.name},
            }
            for file in files
        )
    if path.suffix == ".jsonl" and path.is_file():
        return to_documents(read_jsonl(path, objects=False))
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    raise InvalidArgumentError(
        f"{path}: expected a folder of .txt/.md files, a .jsonl file, or '-' for stdin"
    )


def read_text_file(path: Path) -> str:
    """The UTF-8 text of ``path``; an error names the file and the byte when it is not UTF-8."""
    return decode_text(path.read_bytes(), path)


def decode_text(data: bytes, origin: str | Path) -> str:
    """``data`` as UTF-8, or an error naming ``origin`` and the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(
            f"{origin}: not UTF-8 (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None


def text_files(folder: Path, *, follow_symlinks: bool = False) -> list[Path]:
    """The .txt/.md files under ``folder`` (any case), sorted, as paths inside ``folder``.

    A symlink (to a file or a folder) whose target lies outside ``folder`` is
    skipped with a warning naming it, unless ``follow_symlinks``: a corpus never
    reads a file its folder does not hold.  Links inside the folder are followed;
    a folder reached twice (a link cycle) is read once.
    """
    root = folder.resolve()
    found: list[Path] = []
    skipped: list[str] = []
    seen: set[Path] = set()
    for directory, subdirectories, names in os.walk(folder, followlinks=True):
        current = Path(directory)
        real = current.resolve()
        if real in seen or (not follow_symlinks and leads_outside(real, root)):
            if real not in seen:
                skipped.append(str(current))
            subdirectories.clear()
            continue
        seen.add(real)
        subdirectories.sort()
        for name in sorted(names):
            path = current / name
            if not name.lower().endswith(TEXT_SUFFIXES) or not path.is_file():
                continue
            if not follow_symlinks and leads_outside(path, root):
                skipped.append(str(path))
                continue
            found.append(path)
    if skipped:
        logger.warning(
            "skipped %d symlink(s) leading outside %s (pass follow_symlinks / --follow-symlinks to "
            "read them): %s",
            len(skipped),
            folder,
            ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
        )
    return sorted(found)
