"""How a stored row records the sources that hold it: each source as one string in a Chroma array.

Chroma arrays hold one type, so every source (a str, int, float or bool) becomes a token:
a str is itself, unless it starts with ``json:`` or ``str:``, when it gains ``str:`` in
front; any other value is ``json:`` and its JSON.  No str can then read as another value,
and reading never raises: a token that is none of these reads as the str it is.

Rows written by the versions after 0.1.0 that first kept a record keep theirs under
:data:`LEGACY_SOURCES_KEY`, where every str was itself: the str ``"json:5"`` and the int
``5`` shared a token, and ``"json:notes.txt"`` could not be read back.  Such rows are read
with :func:`legacy_source` (the ambiguous token is the int, unless the row's own tag is the
str) and rewritten in the new record the next time a sync touches them.

This module imports nothing of the package.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "LEGACY_SOURCES_KEY",
    "SOURCES_KEY",
    "legacy_source",
    "legacy_token",
    "recorded_tokens",
    "source_token",
    "source_value",
]

#: The metadata key under which a stored row records the tokens of the sources that hold it.
SOURCES_KEY = "inbedder_sources_v2"
#: Where earlier versions kept that record, in an ambiguous encoding (read and migrated, never written).
LEGACY_SOURCES_KEY = "inbedder_sources"

_JSON, _STR = "json:", "str:"


def source_token(value: Any) -> str:
    """``value`` as a token no other value shares."""
    if isinstance(value, str):
        return _STR + value if value.startswith((_JSON, _STR)) else value
    return _JSON + json.dumps(value)


def source_value(token: str) -> Any:
    """The source ``token`` stands for; a token :func:`source_token` cannot write reads as itself."""
    if token.startswith(_STR):
        return token[len(_STR) :]
    if token.startswith(_JSON):
        value = _scalar_json(token[len(_JSON) :])
        if value is not None:
            return value
    return token


def legacy_token(value: Any) -> str:
    """``value`` as earlier versions wrote it under :data:`LEGACY_SOURCES_KEY`: a str as
    itself, any other value as ``json:`` and its JSON."""
    return value if isinstance(value, str) else _JSON + json.dumps(value)


def legacy_source(token: str, tag: Any) -> Any:
    """The source a :data:`LEGACY_SOURCES_KEY` token stands for.  ``json:5`` was written for
    the int 5 and the str ``"json:5"`` alike: it is the str when the row's own ``tag`` is that
    str, else the int.
    A ``json:`` token that no int, float or bool writes (``json:notes.txt``) is a str."""
    if token.startswith(_JSON) and tag != token:
        value = _scalar_json(token[len(_JSON) :])
        if value is not None:
            return value
    return token


def recorded_tokens(metadata: dict[str, Any], source_key: str) -> set[str]:
    """The tokens of the sources a stored row records as holding it: the record, else the
    legacy record translated, else (rows older still) its own ``source_key`` tag.  Whatever
    another writer left there, this does not raise: entries that are not strings are ignored."""
    record = metadata.get(SOURCES_KEY)
    if record is not None:
        return _strings(record)
    legacy = metadata.get(LEGACY_SOURCES_KEY)
    if legacy is not None:
        tag = metadata.get(source_key)
        return {source_token(legacy_source(token, tag)) for token in _strings(legacy)}
    return {source_token(metadata[source_key])} if source_key in metadata else set()


def _strings(record: Any) -> set[str]:
    items = record if isinstance(record, list) else [record]
    return {item for item in items if isinstance(item, str)}


def _scalar_json(text: str) -> int | float | bool | None:
    """The int, float or bool whose ``json.dumps`` is ``text``, else None."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, int | float) and json.dumps(value) == text:
        return value
    return None
