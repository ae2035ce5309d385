"""Line and JSONL reading, in one place: one JSON value a line, blank lines skipped, errors name the line.

Lines end at ``"\n"`` alone.  ``str.splitlines()`` and Python's universal newlines
also end a line at U+2028, U+0085, a form feed or a lone ``"\r"``, all valid inside
a JSON string written with ``ensure_ascii=False`` and inside a text: they would cut
one row or one text in two.

Every JSONL file the package reads (``inbedder embed --input``, ``inbedder index``,
evaluation and training sets, the leakage check) goes through :func:`read_jsonl`,
so a bad line is reported the same way everywhere: ``<origin>:<line>: <what is wrong>``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError

__all__ = ["read_jsonl", "read_lines", "split_lines"]


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
            lines = stack.enter_context(gzip.open(path, "rt", encoding="utf-8", newline="\n"))
        else:
            lines = stack.enter_context(path.open(encoding="utf-8", newline="\n"))
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


def read_lines(source: str | Path) -> Iterator[str]:
    """The lines of a UTF-8 file, or of stdin for ``"-"``, lazily, without their ``"\n"``
    (nor the ``"\r"`` of a ``"\r\n"``); only ``"\n"`` ends a line."""
    with contextlib.ExitStack() as stack:
        if str(source) == "-":
            stream = _stdin()
        else:
            stream = stack.enter_context(open(source, encoding="utf-8", newline="\n"))
        for line in stream:
            yield _without_newline(line)


def split_lines(text: str) -> list[str]:
    """``text`` cut at each ``"\n"`` (a ``"\r"`` before it dropped): never at other line breaks."""
    lines = [_without_newline(line) for line in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def _without_newline(line: str) -> str:
    line = line.removesuffix("\n")
    return line.removesuffix("\r")


def _stdin() -> io.TextIOBase:
    """stdin as UTF-8 split at ``"\n"`` alone (a replaced ``sys.stdin``, as in tests, as it is)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:
        return sys.stdin  # type: ignore[return-value]
    return io.TextIOWrapper(buffer, encoding="utf-8", newline="\n")
