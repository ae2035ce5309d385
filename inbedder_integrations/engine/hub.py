"""Model references: a local path or a Hugging Face hub id, and the one-line errors for either
when it is not there.

A reference that can only be a path (``./x``, ``/x``, ``~/x``, ``a/b/c``) and does not exist
fails here, before anything is loaded or asked of the network; a hub id that the Hub does not
know, or that is not in the local cache while the Hub cannot be reached, fails with an error
that names it and the way out, not with the HTTP client's traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import HubUnreachableError, InBedderError, ModelNotFoundError

__all__ = ["HUB_ID", "check_local_reference", "hub_errors", "looks_like_path"]

#: ``name`` or ``org/name``: what the Hub accepts as a repo id (letters, digits, ``-_.``).
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


def looks_like_path(reference: str) -> bool:
    """True when ``reference`` can only mean a local path: it starts with ``.``, ``/`` or ``~``,
    or it is not a valid hub id (``a/b/c``, a backslash, ``..``)."""
    return (
        reference.startswith((".", "/", "~"))
        or HUB_ID.fullmatch(reference) is None
        or ".." in reference
        or "--" in reference
    )


def check_local_reference(reference: str, what: str = "model") -> None:
    """Refuse a path-like ``reference`` that does not exist, naming it (a hub id passes)."""
    if looks_like_path(reference) and not Path(reference).expanduser().exists():
        raise ModelNotFoundError(
            f"{what} {reference!r}: no such folder or file ({Path(reference).expanduser().absolute()});"
            f" give an existing {what} folder, a .gguf file, or a hub id like 'org/name'"
        )


@contextmanager
def hub_errors(reference: str, what: str = "model", revision: str | None = None) -> Iterator[None]:
    """Turn the Hub's errors about ``reference`` into one-line :class:`ModelNotFoundError` s:
    an unknown or gated repo, a missing revision, or no network and no cached copy."""
    import httpx
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        yield
    except InBedderError:
        raise
    except GatedRepoError as exc:
        raise ModelNotFoundError(
            f"{what} {reference!r} is gated on the Hugging Face Hub: accept its terms on"
            " huggingface.co, then log in (`hf auth login`)"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise ModelNotFoundError(
            f"{what} {reference!r}: no such local folder, and no such repo on the Hugging Face Hub"
            " (check the spelling; a private repo needs `hf auth login`)"
        ) from exc
    except RevisionNotFoundError as exc:
        raise ModelNotFoundError(
            f"{what} {reference!r}: the Hugging Face Hub has no revision {revision!r} of it"
        ) from exc
    except (ConnectionError, httpx.TransportError, LocalEntryNotFoundError) as exc:
        raise HubUnreachableError(
            f"{what} {reference!r}: not a local folder, not in the local Hugging Face cache, and the"
            " Hub is unreachable (offline?): connect and retry, or give a local folder"
        ) from exc
