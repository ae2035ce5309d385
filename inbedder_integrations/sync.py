"""Keeping a collection equal to its source: what a batch embeds, re-tags or leaves, and what
cleanup removes.

The semantics follow LangChain's indexing API (cleanup ``None``, ``"incremental"``,
``"full"``) and LlamaIndex's ingestion docstore strategies (upserts; upserts and
delete):

- a document whose text is new or changed is embedded and written;
- a document whose text is unchanged but whose metadata changed is re-tagged in
  place, without embedding (keys it no longer has are removed);
- ``cleanup="incremental"``: stored documents sharing a ``source`` with this input
  but absent from it are deleted (a file that lost a chunk), unless a source that
  is not in this input still holds them;
- ``cleanup="full"``: every stored document absent from this input is deleted.

Which sources hold a row is recorded in the row (``inbedder_sources_v2``, each source a token
of :mod:`.source_tokens`, so no str reads as an int), as
LangChain's record manager records which source holds which key: with content ids,
a paragraph that two files share is one row, and a file that drops it must not
take it from the other.  The row's own ``source`` then names a remaining holder.
When the same id comes twice in one input, the later metadata wins (as two upserts
in order would leave it), and every occurrence's source holds the row.  Rows that keep the
earlier, ambiguous record (``inbedder_sources``) are read through it and rewritten in the new
one when a sync touches them.

Deletion runs after every write of the run, under all of the corpus's
instructions, so a run that stops early never deletes what it has not replaced.

Every Chroma read and write of a sync is here (:func:`write_batch`, :func:`clean`); the corpus
opens the collections, embeds, and says how each call is retried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from .documents import TEXT_HASH_KEY, CorpusDocument
from .errors import InvalidArgumentError
from .source_tokens import (
    LEGACY_SOURCES_KEY,
    SOURCES_KEY,
    legacy_token,
    recorded_tokens,
    source_token,
    source_value,
)

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

__all__ = [
    "CLEANUP_MODES",
    "BatchPlan",
    "Holders",
    "SyncResult",
    "clean",
    "delete_everywhere",
    "plan_batch",
    "row_metadata",
    "stale_ids",
    "stale_rows",
    "write_batch",
]
T = TypeVar("T")

CLEANUP_MODES = (None, "incremental", "full")


@dataclass
class SyncResult:
    """Per instruction: rows embedded and written, rows re-tagged without embedding, rows deleted."""

    written: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Holders:
    """Which of the input's sources hold each id, and what the input speaks for: under
    ``incremental`` each source in it is given whole, under ``full`` the whole corpus is."""

    by_id: dict[str, set[str]]
    sources: set[str]
    """Tokens (:func:`~.source_tokens.source_token`) of the sources the input holds."""
    cleanup: str | None
    source_key: str

    @classmethod
    def of(cls, documents: Sequence[CorpusDocument], cleanup: str | None, source_key: str) -> Holders:
        by_id: dict[str, set[str]] = {}
        for document in documents:
            by_id[document.id] = {source_token(value) for value in document.sources(source_key)}
        sources = set().union(*by_id.values()) if by_id else set()
        return cls(by_id, sources, cleanup, source_key)

    def of_row(self, document_id: str, stored: dict[str, Any] | None) -> list[str]:
        """The sources that hold ``document_id`` once this input is written."""
        given = self.by_id.get(document_id, set())
        old = recorded_tokens(stored or {}, self.source_key)
        if self.cleanup == "full":
            old = set()
        elif self.cleanup == "incremental":
            old -= self.sources
        return sorted(old | given)


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


def plan_batch(collection: Collection, batch: Sequence[CorpusDocument], holders: Holders) -> BatchPlan:
    """What ``batch`` needs in ``collection`` (one read of the stored metadata)."""
    got = collection.get(ids=[d.id for d in batch], include=["metadatas"])
    stored = {id_: dict(meta or {}) for id_, meta in zip(got["ids"], got["metadatas"] or [], strict=True)}
    embed, retag = [], []
    for document in batch:
        old = stored.get(document.id)
        if old is None or old.get(TEXT_HASH_KEY) != document.text_hash:
            embed.append(document)
        elif (
            not _same(_user_metadata(old), document.metadata)
            or old.get(SOURCES_KEY, []) != holders.of_row(document.id, old)
            or LEGACY_SOURCES_KEY in old
        ):
            retag.append(document)
    return BatchPlan(embed, retag, stored)


def row_metadata(document: CorpusDocument, stored: dict[str, Any] | None, holders: Holders) -> dict[str, Any]:
    """The metadata to write: the document's, its text hash, the sources that hold it, and
    ``None`` for each key the stored row has and the document lost (Chroma merges metadata;
    ``None`` removes a key)."""
    removed = {key: None for key in _user_metadata(stored or {}) if key not in document.metadata}
    held = holders.of_row(document.id, stored)
    record = {SOURCES_KEY: held} if held else ({SOURCES_KEY: None} if SOURCES_KEY in (stored or {}) else {})
    return {**document.metadata, TEXT_HASH_KEY: document.text_hash, **removed, **record, **_migrated(stored)}


def _migrated(stored: dict[str, Any] | None) -> dict[str, Any]:
    """Removes the earlier record from a row the new one replaces."""
    return {LEGACY_SOURCES_KEY: None} if LEGACY_SOURCES_KEY in (stored or {}) else {}


def stale_rows(
    collection: Collection, keep: set[str], holders: Holders, *, page: int = 1000
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """Incremental cleanup: the ids to delete (absent from the input, and held by no source
    that is not in it) and the metadata updates of those another source still holds."""
    doomed: list[str] = []
    updates: dict[str, dict[str, Any]] = {}
    for ids, metadatas in _rows_of_sources(collection, holders, page):
        for id_, metadata in zip(ids, metadatas, strict=True):
            if id_ in keep or id_ in updates or id_ in doomed:
                continue
            remaining = sorted(recorded_tokens(metadata, holders.source_key) - holders.sources)
            if not remaining:
                doomed.append(id_)
            else:
                tag = source_value(remaining[0])
                updates[id_] = {SOURCES_KEY: remaining, holders.source_key: tag, **_migrated(metadata)}
    return doomed, updates


def _rows_of_sources(
    collection: Collection, holders: Holders, page: int
) -> Iterable[tuple[list[str], list[dict[str, Any]]]]:
    """Rows that record one of the input's sources (in either record), and older rows (no
    record) tagged with one."""
    if not holders.sources:
        return
    values = [source_value(token) for token in sorted(holders.sources)]
    recorded = [{SOURCES_KEY: {"$contains": source_token(value)}} for value in values]
    old_tokens = sorted({legacy_token(value) for value in values})
    legacy = [{LEGACY_SOURCES_KEY: {"$contains": token}} for token in old_tokens]
    tagged = [{holders.source_key: value} for value in values]
    if len({type(value) for value in values}) == 1:  # $in takes one type
        tagged = [{holders.source_key: {"$in": values}}]
    for clauses in (recorded, legacy, tagged):
        where = clauses[0] if len(clauses) == 1 else {"$or": clauses}
        offset = 0
        while True:
            got = collection.get(where=where, include=["metadatas"], limit=page, offset=offset)  # type: ignore[arg-type]
            if not got["ids"]:
                break
            yield got["ids"], [dict(meta or {}) for meta in got["metadatas"] or []]
            offset += len(got["ids"])


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
    own = (TEXT_HASH_KEY, SOURCES_KEY, LEGACY_SOURCES_KEY)
    return {key: value for key, value in metadata.items() if key not in own}


def _same(stored: dict[str, Any], given: dict[str, Any]) -> bool:
    """Equal keys, values and types (``1 == 1.0 == True`` in Python, not in a filter)."""
    return stored.keys() == given.keys() and all(
        type(stored[key]) is type(given[key]) and stored[key] == given[key] for key in given
    )


# ------------------------------------------------------------------ a sync's reads and writes


class Retrying(Protocol):
    """How each Chroma call of a sync is made (:meth:`~.corpus.RetryPolicy.call`)."""

    def __call__(self, what: str, operation: Callable[[], T]) -> T: ...


#: ``embed_many(texts, instructions)``: each instruction's rows (:meth:`InBedder.embed_many`).
EmbedMany = Callable[[list[str], list[str]], Mapping[str, np.ndarray]]


def write_batch(
    collections: Mapping[str, Collection],
    batch: list[CorpusDocument],
    holders: Holders,
    result: SyncResult,
    embed_many: EmbedMany,
    call: Retrying,
) -> None:
    """Make each collection hold ``batch``: read what is stored, re-tag what only changed
    metadata, embed (once for every instruction that needs a text) and upsert the rest."""
    plans = {
        q: call(f"read {collection.name}", lambda c=collection: plan_batch(c, batch, holders))
        for q, collection in collections.items()
    }
    for instruction, plan in plans.items():
        if plan.retag:
            collection = collections[instruction]
            call(f"update {collection.name}", lambda c=collection, p=plan: c.update(**_retagged(p, holders)))
            result.updated[instruction] += len(plan.retag)
    pending = [q for q in collections if plans[q].embed]
    if not pending:
        return
    needed = list({d.id: d for q in pending for d in plans[q].embed}.values())
    vectors = embed_many([d.text for d in needed], pending)
    row_of = {d.id: row for row, d in enumerate(needed)}
    for instruction in pending:
        plan, collection = plans[instruction], collections[instruction]
        rows = vectors[instruction][[row_of[d.id] for d in plan.embed]]
        call(
            f"upsert into {collection.name}",
            lambda c=collection, p=plan, r=rows: c.upsert(**_upserted(p, r, holders)),
        )
        result.written[instruction] += len(plan.embed)


def _retagged(plan: BatchPlan, holders: Holders) -> dict[str, Any]:
    metadatas = [row_metadata(d, plan.stored.get(d.id), holders) for d in plan.retag]
    return {"ids": [d.id for d in plan.retag], "metadatas": metadatas}


def _upserted(plan: BatchPlan, vectors: np.ndarray, holders: Holders) -> dict[str, Any]:
    rows = plan.embed
    metadatas = [row_metadata(d, plan.stored.get(d.id), holders) for d in rows]
    texts = [d.text for d in rows]
    return {"ids": [d.id for d in rows], "documents": texts, "metadatas": metadatas, "embeddings": vectors}


def clean(
    collections: Mapping[str, Collection], keep: set[str], holders: Holders, call: Retrying
) -> dict[str, int]:
    """Delete from every collection what the input no longer holds (``holders.cleanup``); a row
    that only a source absent from the input still holds is re-tagged as that source's instead."""
    if holders.cleanup == "full":
        return delete_everywhere(collections, lambda collection: stale_ids(collection, keep), call)
    retagged: dict[str, dict[str, dict[str, Any]]] = {}

    def select(collection: Collection) -> list[str]:
        doomed, retagged[collection.name] = stale_rows(collection, keep, holders)
        return doomed

    deleted = delete_everywhere(collections, select, call)
    for collection in collections.values():
        updates = retagged.get(collection.name) or {}
        if updates:
            call(
                f"update {collection.name}",
                lambda c=collection, u=updates: c.update(ids=list(u), metadatas=list(u.values())),
            )
    return deleted


def delete_everywhere(
    collections: Mapping[str, Collection], select: Callable[[Collection], list[str]], call: Retrying
) -> dict[str, int]:
    """In each collection: delete the ids ``select`` finds (in chunks of 1,000, each call
    retried); returns how many each one lost, by instruction."""
    deleted = {}
    for instruction, collection in collections.items():
        doomed = call(f"read {collection.name}", lambda c=collection: select(c))
        for start in range(0, len(doomed), 1000):
            chunk = doomed[start : start + 1000]
            call(f"delete from {collection.name}", lambda c=collection, x=chunk: c.delete(ids=x))
        deleted[instruction] = len(doomed)
    return deleted
