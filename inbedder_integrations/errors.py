"""The errors a user should see as one line, and the small argument checks that raise them.

Everything the package raises because the *caller* got something wrong (a bad
argument, bad input, a store built for other vectors) derives from
:class:`InBedderError`, so an application or the ``inbedder`` command can catch
exactly those and let real bugs raise with their traceback.  Each concrete class
also derives from the built-in type it replaced (``ValueError``, ``TypeError``,
``ConnectionError``, ``LookupError``, ``ImportError``), so existing
``except ValueError`` code keeps working.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "HubUnreachableError",
    "InBedderError",
    "InputNotFoundError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "MissingError",
    "MissingExtraError",
    "ModelNotFoundError",
    "UntrustedConfigError",
    "VectorError",
    "missing_extra",
    "positive_int",
]


class InBedderError(Exception):
    """Base of every error caused by the caller's input or settings, not by a bug."""


class InvalidArgumentError(InBedderError, ValueError):
    """An argument or an input has a value the package cannot use."""


class InvalidTypeError(InBedderError, TypeError):
    """An argument or an input has the wrong type (a str where a list of str belongs, ...)."""


class MissingError(InBedderError, LookupError):
    """Something the caller named (a collection, an instruction, an id) is not there."""


class MissingExtraError(InBedderError, ImportError):
    """An optional dependency (an extra) is not installed; the message says how to install it."""


def missing_extra(extra: str, package: str) -> MissingExtraError:
    """The error raised when an optional dependency (an extra) is not installed (an ImportError)."""
    return MissingExtraError(
        f"This feature needs '{package}', which is not installed. Install it with:\n"
        f"    pip install 'inbedder-integrations[{extra}]'"
    )


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an int >= 1 (bools excluded), else an :class:`InvalidArgumentError` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive int, got {value!r}")
    return value


class UntrustedConfigError(InBedderError, PermissionError):
    """A persisted config (another party's data) asks for something only this process may allow:
    code execution, pickle loading, a server to send texts and a key to. The message names what
    it asks for and the setting (or the explicit function) that allows it."""


class VectorError(InBedderError, ValueError):
    """Vectors that cannot be right (wrong count or width, non-finite, not unit length when they
    should be), from a model or a server: refused before anyone stores or compares them."""


class ModelNotFoundError(InBedderError, FileNotFoundError):
    """A model or adapter the caller named is neither a local folder or file nor a repo on the
    Hugging Face Hub; the message names it and says what to give instead."""


class HubUnreachableError(ModelNotFoundError, ConnectionError):
    """A hub id that is not in the local Hugging Face cache, while the Hub cannot be reached
    (offline, a proxy, ``HF_HUB_OFFLINE=1``): the message names the id and the way out."""


class InputNotFoundError(InBedderError, FileNotFoundError):
    """An input file the caller named (texts, training data) does not exist."""
