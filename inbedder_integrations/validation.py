"""The checks every caller's texts and instructions pass, wherever they enter.

A text or an instruction reaches the package through the engine, an adapter, a
corpus, the server, the CLI or a training file; each of those checks it here, so
a bad one fails with the same message (naming the argument and the offending
index) before any model, store or server sees it.  Imports only :mod:`.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import InvalidArgumentError, InvalidTypeError

__all__ = ["validate_instruction", "validate_instructions", "validate_texts", "validate_unicode"]


def validate_unicode(text: str, argument: str) -> str:
    """``text`` if it can be encoded as UTF-8, else a ValueError naming ``argument``.

    A ``str`` can hold lone surrogates (``"\\ud800"``, e.g. from ``errors="surrogateescape"``
    decoding); tokenizers and databases reject them.
    """
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgumentError(
                f"{argument} is not valid Unicode: lone surrogate {text[exc.start]!r} at character "
                f"{exc.start} cannot be encoded as UTF-8; decode the source with errors='replace'"
            ) from None
    return text


def validate_texts(texts: Any, argument: str = "texts", offset: int = 0) -> list[str]:
    """A list of strings, or a clear error naming the offending index (counted from ``offset``)."""
    if isinstance(texts, str):
        raise InvalidTypeError(
            f"{argument} must be a list of strings, got a single str; wrap it in a list: [text]"
        )
    if isinstance(texts, (bytes, bytearray)):
        raise InvalidTypeError(
            f"{argument} must be a list of strings, got {type(texts).__name__}; decode it first"
        )
    if texts is None or not isinstance(texts, Sequence):
        raise InvalidTypeError(f"{argument} must be a list of strings, got {type(texts).__name__}")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidTypeError(
                f"{argument}[{offset + index}] must be a str, got {type(text).__name__}: {text!r:.80}"
            )
        validate_unicode(text, f"{argument}[{offset + index}]")
    return list(texts)


def validate_instruction(instruction: Any, argument: str = "instruction") -> str:
    if not isinstance(instruction, str):
        raise InvalidTypeError(f"{argument} must be a str, got {type(instruction).__name__}")
    validate_unicode(instruction, argument)
    if not instruction.strip():
        raise InvalidArgumentError(
            f"{argument} must be a non-empty question about the text, got {instruction!r}"
        )
    return instruction


def validate_instructions(instructions: Any, argument: str = "instructions") -> list[str]:
    """A non-empty list of distinct instructions, or a clear error naming the offending one."""
    if isinstance(instructions, str):
        raise InvalidTypeError(f"{argument} must be a list of strings; wrap a single one: [instruction]")
    if isinstance(instructions, (bytes, bytearray)):
        raise InvalidTypeError(f"{argument} must be a list of strings, got {type(instructions).__name__}")
    if not isinstance(instructions, Sequence) or not instructions:
        raise InvalidTypeError(f"{argument} must be a non-empty list of strings, got {instructions!r:.80}")
    checked = [validate_instruction(x, f"{argument}[{i}]") for i, x in enumerate(instructions)]
    for index, instruction in enumerate(checked):
        if instruction in checked[:index]:
            raise InvalidArgumentError(f"{argument}[{index}] repeats {instruction!r}")
    return checked
