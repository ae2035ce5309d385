"""The one text hash of the package: cache keys and the hashes stored with Chroma rows.

Imports only :mod:`.errors`.
"""

from __future__ import annotations

import hashlib

from .errors import InvalidArgumentError

__all__ = ["text_sha256"]


def text_sha256(text: str) -> str:
    """The hex sha256 of ``text`` as strict UTF-8: the one text hash of the package.

    Cache keys and the text hashes stored with Chroma rows
    (:attr:`~inbedder_integrations.corpus.CorpusDocument.text_hash`) both come from
    here.  A lone surrogate (``"\\ud800"``) has no UTF-8 form: such a text is refused
    with an :class:`~inbedder_integrations.errors.InvalidArgumentError` (the engine
    refuses it too), never hashed under some private encoding.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(
            f"text is not valid Unicode: lone surrogate {text[exc.start]!r} at character {exc.start} "
            "cannot be encoded as UTF-8, so it has no sha256; decode the source with errors='replace'"
        ) from None
    return hashlib.sha256(data).hexdigest()
