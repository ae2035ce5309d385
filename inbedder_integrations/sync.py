"""Keeping a collection equal to its source: what a batch embeds, re-tags or leaves, and what
cleanup removes.

The semantics follow LangChain's indexing API (cleanup ``None``, ``"incremental"``,
``"full"``) and LlamaIndex's ingestion docstore strategies (upserts; upserts and
delete):

- a document whose text is new or changed is embedded and written;
- a document whose text is unchanged but whose metadata changed is re-tagged in
  place, without embedding (keys it no longer has are removed);
- ``cleanup="incremental"``: stored documents sharing a ``source`` with this input
  but absent from it are deleted (a file that lost a chunk);
- ``cleanup="full"``: every stored document absent from this input is deleted.

Deletion runs after every write of the run, under all of the corpus's
instructions, so a run that stops early never deletes what it has not replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .documents import TEXT_HASH_KEY, CorpusDocument
from .errors import InvalidArgumentError

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

__all__ = ["CLEANUP_MODES", "BatchPlan", "SyncResult", "plan_batch", "row_metadata", "stale_ids"]

CLEANUP_MODES = (None, "incremental", "full")


@dataclass
class SyncResult:
    """Per instruction: rows embedded and written, rows re-tagged without embedding, rows deleted."""

    written: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchPlan:
    embed: list[CorpusDocument]
    """Absent from the collection, or stored with another text."""
    retag: list[CorpusDocument]
    """Stored with this text but other metadata: updated in place."""
    stored: dict[str, dict[str, Any]]
    """The stored metadata of the batch's documents that are present."""


def check_cleanup(cleanup: str | None) -> None:
    if cleanup not in CLEANUP_MODES:
        raise InvalidArgumentError(f"cleanup must be one of {CLEANUP_MODES}, got {cleanup!r}")


def plan_batch(collection: Collection, batch: Sequence[CorpusDocument]) -> BatchPlan:
    """What ``batch`` needs in ``collection`` (one read of the stored metadata)."""
    got = collection.get(ids=[d.id for d in batch], include=["metadatas"])
    stored = {id_: dict(meta or {}) for id_, meta in zip(got["ids"], got["metadatas"] or [], strict=True)}
    embed, retag = [], []
    for document in batch:
        old = stored.get(document.id)
        if old is None or old.get(TEXT_HASH_KEY) != document.text_hash:
            embed.append(document)
        elif not _same(_user_metadata(old), document.metadata):
            retag.append(document)
    return BatchPlan(embed, retag, stored)


def row_metadata(document: CorpusDocument, stored: dict[str, Any] | None) -> dict[str, Any]:
    """The metadata to write: the document's, its text hash, and ``None`` for each key the
    stored row has and the document lost (Chroma merges metadata; ``None`` removes a key)."""
    removed = {key: None for key in _user_metadata(stored or {}) if key not in document.metadata}
    return {**document.metadata, TEXT_HASH_KEY: document.text_hash, **removed}


def stale_ids(
    collection: Collection,
    keep: set[str],
    *,
    sources: set[Any] | None = None,
    source_key: str = "source",
    page: int = 1000,
) -> list[str]:
    """Ids stored in ``collection`` but not in ``keep``; with ``sources``, only those whose
    ``source_key`` metadata is one of them (incremental cleanup)."""
    if sources is not None and not sources:
        return []
    where = {source_key: {"$in": sorted(sources, key=repr)}} if sources is not None else None
    stale: list[str] = []
    for ids in _pages(collection, where, page):
        stale.extend(id_ for id_ in ids if id_ not in keep)
    return stale


def _pages(collection: Collection, where: dict[str, Any] | None, page: int) -> Iterable[list[str]]:
    offset = 0
    while True:
        ids = collection.get(where=where, include=[], limit=page, offset=offset)["ids"]  # type: ignore[arg-type]
        if not ids:
            return
        yield ids
        offset += len(ids)


def _user_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in metadata.items() if key != TEXT_HASH_KEY}


def _same(stored: dict[str, Any], given: dict[str, Any]) -> bool:
    """Equal keys, values and types (``1 == 1.0 == True`` in Python, not in a filter)."""
    return stored.keys() == given.keys() and all(
        type(stored[key]) is type(given[key]) and stored[key] == given[key] for key in given
    )
