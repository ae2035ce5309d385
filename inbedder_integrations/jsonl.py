"""JSONL reading, in one place: one JSON value a line, blank lines skipped, errors name the line.

Every JSONL file the package reads (``inbedder embed --input``, ``inbedder index``,
evaluation and training sets, the leakage check) goes through :func:`read_jsonl`,
so a bad line is reported the same way everywhere: ``<origin>:<line>: <what is wrong>``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError

__all__ = ["read_jsonl"]


def read_jsonl(
    source: str | Path | Iterable[str],
    origin: str | None = None,
    *,
    objects: bool = True,
    text_fields: Sequence[str] = (),
) -> Iterator[Any]:
    """The rows of a JSONL file (``.gz`` is decompressed) or of lines already read, lazily.

    ``origin`` names the source in errors (default: the path; ``"<lines>"`` for
    lines).  ``objects``: every row must be a JSON object; ``text_fields``: fields
    each row must hold as a string.  A line that breaks a rule raises
    :class:`~inbedder_integrations.errors.InvalidArgumentError` naming
    ``origin:line``.  A missing file raises ``FileNotFoundError`` when the first
    row is read.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        origin = origin or str(path)
    else:
        path, origin = None, origin or "<lines>"
    with contextlib.ExitStack() as stack:
        if path is None:
            lines: Iterable[str] = source  # type: ignore[assignment]
        elif path.suffix == ".gz":
            lines = stack.enter_context(gzip.open(path, "rt", encoding="utf-8"))
        else:
            lines = stack.enter_context(path.open(encoding="utf-8"))
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidArgumentError(f"{origin}:{number}: not valid JSON ({exc.msg})") from None
            if (objects or text_fields) and not isinstance(row, dict):
                raise InvalidArgumentError(
                    f"{origin}:{number}: each JSONL row must be a JSON object, got {type(row).__name__}"
                )
            for field in text_fields:
                if not isinstance(row.get(field), str):
                    raise InvalidArgumentError(
                        f"{origin}:{number}: each JSONL row needs a string field {field!r}"
                    )
            yield row
