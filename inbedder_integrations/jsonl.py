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
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError

__all__ = ["numbered_jsonl", "read_decompressed", "read_jsonl", "read_lines", "split_lines"]

#: What reading a damaged file raises: a gzip stream cut short or corrupt, bytes that are not UTF-8.
_UNREADABLE = (EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError)


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
    for _, row in numbered_jsonl(source, origin, objects=objects, text_fields=text_fields):
        yield row


def numbered_jsonl(
    source: str | Path | Iterable[str],
    origin: str | None = None,
    *,
    objects: bool = True,
    text_fields: Sequence[str] = (),
) -> Iterator[tuple[int, Any]]:
    """:func:`read_jsonl`, each row with its 1-based line number.  A file that cannot be read to
    its end (a gzip file cut short, bytes that are not UTF-8) raises naming the line it reached."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        origin = origin or str(path)
    else:
        path, origin = None, origin or "<lines>"
    with contextlib.ExitStack() as stack:
        if path is None:
            lines: Iterable[str | bytes] = source  # type: ignore[assignment]
        elif path.suffix == ".gz":
            lines = stack.enter_context(gzip.open(path, "rb"))
        else:
            lines = stack.enter_context(path.open("rb"))
        for number, line in _numbered_lines(lines, origin):
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
            yield number, row


def _numbered_lines(lines: Iterable[str | bytes], origin: str) -> Iterator[tuple[int, str]]:
    """Lines numbered from 1, bytes decoded one line at a time (so an error names its line;
    a binary file's lines end at ``b"\n"`` alone, which no other UTF-8 character contains)."""
    iterator, number = iter(lines), 0
    while True:
        try:
            line = next(iterator)
            text = line.decode("utf-8") if isinstance(line, bytes) else line
        except StopIteration:
            return
        except _UNREADABLE as exc:
            raise InvalidArgumentError(f"{origin}:{number + 1}: {_unreadable(exc)}") from None
        number += 1
        yield number, text


def read_decompressed(path: Path) -> bytes:
    """The bytes of ``path``, gunzipped for ``.gz``; a damaged gzip file raises naming it."""
    raw = path.read_bytes()
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except _UNREADABLE as exc:
        raise InvalidArgumentError(f"{path}: {_unreadable(exc)}") from None


def _unreadable(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 (byte {exc.object[exc.start]:#04x}); convert it first, e.g. iconv -t utf-8"
    if isinstance(exc, EOFError):
        return "the gzip file is cut short (an interrupted download or copy?); fetch or build it again"
    return f"damaged gzip data ({exc}); fetch or build the file again"


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
