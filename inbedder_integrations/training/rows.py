"""The rows a training run learns from, read and checked whole before any model loads.

A data file is someone else's work: a row that is not an object, a field that is not a
string, an empty file, a gzip file cut short.  Each is refused here with one line naming
the file, the row (``file:LINE`` in JSONL, ``file: row N`` in a JSON array) and the field,
rather than as a ``TypeError`` from the tokenizer after the model has loaded.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from ..jsonl import numbered_jsonl, read_decompressed
from ..validation import validate_unicode

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["load_rows", "training_rows"]

#: Names that are files, not hub dataset ids: a missing one is an error, not a download.
_FILE_SUFFIXES = (".json", ".jsonl", ".gz")


def load_rows(
    data: str, max_rows: int | None = None, families: list[str] | None = None
) -> list[dict[str, str]]:
    """Rows with instruction/input/output from a local JSON(L) file or a hub dataset.

    Every row of the file is checked (not only the first ``max_rows``): a bad row raises
    :class:`~inbedder_integrations.errors.InvalidArgumentError` naming it and its field.
    ``families``: keep only rows whose ``family`` is one of them (before ``max_rows``).
    """
    numbered = _numbered_rows(data)
    bad = [f"{where}: {problem}" for where, row in numbered if (problem := _row_problem(row))]
    if bad:
        more = f" ({len(bad)} bad rows in all, the first shown)" if len(bad) > 1 else ""
        raise InvalidArgumentError(bad[0] + more)
    if not numbered:
        raise InvalidArgumentError(f"{data}: no rows (an empty file?)")
    rows = [row for _, row in numbered]
    if families is not None:
        wanted = set(families)
        rows = [row for row in rows if isinstance(row.get("family"), str) and row["family"] in wanted]
        if not rows:
            raise InvalidArgumentError(f"{data} has no rows of the families {families}")
    return [
        {"instruction": row["instruction"], "input": row.get("input") or "", "output": row["output"]}
        for row in (rows[:max_rows] if max_rows else rows)
    ]


def _row_problem(row: Any) -> str | None:
    """What is wrong with one row, or None."""
    if not isinstance(row, dict):
        return f"each row must be a JSON object with 'instruction' and 'output', got {_json_type(row)}"
    for key in ("instruction", "input", "output"):
        value = row.get(key)
        if key == "input" and value is None:
            continue
        if value is None:
            return f"{key!r} is missing (each row needs a non-empty string {key!r})"
        if not isinstance(value, str):
            return f"{key!r} must be a string, got {_json_type(value)} {json.dumps(value)[:40]}"
        if key != "input" and not value.strip():
            return f"{key!r} must be a non-empty string"
        try:
            validate_unicode(value, repr(key))
        except InvalidArgumentError as exc:
            return str(exc)
    return None


def _numbered_rows(data: str) -> list[tuple[str, Any]]:
    """Each row of ``data`` with where it is, for errors."""
    path = Path(data).expanduser()
    if path.is_file():
        if path.name.endswith((".json", ".json.gz")):
            return _json_array_rows(path)
        return [(f"{path}:{number}", row) for number, row in numbered_jsonl(path, objects=False)]
    if path.exists() or data.endswith(_FILE_SUFFIXES):
        raise FileNotFoundError(f"{data}: no such file (a data file, or a hub dataset id)")
    from datasets import load_dataset

    return [(f"{data}: row {number}", row) for number, row in enumerate(load_dataset(data, split="train"), 1)]


def _json_array_rows(path: Path) -> list[tuple[str, Any]]:
    try:
        text = read_decompressed(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(f"{path}: not UTF-8 (byte {exc.object[exc.start]:#04x})") from None
    if not text.strip():
        return []
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(rows, list):
        raise InvalidArgumentError(
            f"{path}: a .json data file must hold a JSON array of rows, got {_json_type(rows)} "
            "(one object a line is JSONL: name the file .jsonl)"
        )
    return [(f"{path}: row {number}", row) for number, row in enumerate(rows, 1)]


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def training_rows(config: TrainConfig) -> tuple[list[dict[str, str]], dict[str, int]]:
    """The rows a run trains on, and how many came from each file.

    ``replay_fraction`` of the rows come from ``replay`` (a seeded sample, rows
    already in the main data skipped), the rest from ``data``.
    """
    rows = load_rows(config.data, config.max_rows, config.families)
    counts = {config.data: len(rows)}
    if config.replay is None:
        return rows, counts
    if not 0 < config.replay_fraction < 1:
        raise InvalidArgumentError(f"replay_fraction must be between 0 and 1, got {config.replay_fraction}")
    seen = {(row["instruction"], row["input"]) for row in rows}
    pool = [row for row in load_rows(config.replay) if (row["instruction"], row["input"]) not in seen]
    wanted = round(len(rows) * config.replay_fraction / (1 - config.replay_fraction))
    replayed = random.Random(config.seed).sample(pool, min(wanted, len(pool)))
    counts[f"replay:{config.replay}"] = len(replayed)
    return rows + replayed, counts
