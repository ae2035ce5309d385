"""Checkpoints a run can trust: committed once whole, checked before a resume.

Hugging Face ``Trainer`` writes a checkpoint's files one after another into
``checkpoint-N``; a run killed in the middle leaves a folder that looks like the
newest checkpoint and ends every rerun in a traceback.  Here a checkpoint is
*committed* by a manifest written after its last file (the size and sha256 of each
file, fsynced, then renamed into place), and a resume takes the newest checkpoint
that is whole: its manifest matches, or, for one without a manifest (written before
manifests existed, or killed between its last file and its manifest), every file the
resume reads is there and parses.  A damaged checkpoint is moved aside (never
deleted) to ``damaged-checkpoint-N``, with a warning naming it and what was wrong.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from ..engine.weights import WeightsError, check_safetensors_file

__all__ = [
    "MANIFEST",
    "checkpoint_problem",
    "checkpoint_step",
    "last_intact_checkpoint",
    "manifest_callback",
    "write_manifest",
]

logger = logging.getLogger(__name__)

#: The file that commits a checkpoint: every other file's size and sha256.
MANIFEST = "inbedder_checkpoint.json"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
#: Files a resume reads besides the weights (``rng_state*.pth``: at least one).
_STATE_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")


def manifest_callback() -> Any:
    """A ``TrainerCallback`` that commits each checkpoint once ``Trainer`` has written it."""
    from transformers import TrainerCallback
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    class CommitCheckpoint(TrainerCallback):
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
                write_manifest(folder, state.global_step)

    return CommitCheckpoint()


def write_manifest(folder: Path, step: int) -> None:
    """Commit ``folder``: its files' sizes and sha256 (each fsynced first), written atomically."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        name = path.relative_to(folder).as_posix()
        files[name] = {"bytes": path.stat().st_size, "sha256": _sha256(path, sync=True)}
    tmp = folder / f".{MANIFEST}.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump({"step": step, "files": files}, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, folder / MANIFEST)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _sha256(path: Path, sync: bool = False) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
        if sync:
            os.fsync(handle.fileno())
    return digest.hexdigest()


def last_intact_checkpoint(folder: Path) -> Path | None:
    """The newest whole checkpoint in ``folder``; newer damaged ones are moved aside, each with
    a warning naming it."""
    if not folder.is_dir():
        return None
    found = sorted(
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if path.is_dir() and (match := _CHECKPOINT.fullmatch(path.name))
    )
    for _, path in reversed(found):
        problem = checkpoint_problem(path)
        if problem is None:
            logger.info("resuming from %s (its weights win over any init adapter)", path)
            return path
        aside = _aside(path)
        path.rename(aside)
        logger.warning(
            "checkpoint %s is damaged (%s): moved to %s, resuming from the one before it",
            path,
            problem,
            aside,
        )
    return None


def _aside(path: Path) -> Path:
    aside, number = path.with_name(f"damaged-{path.name}"), 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"damaged-{path.name}-{number}")
    return aside


def checkpoint_problem(folder: Path) -> str | None:
    """What makes ``folder`` unfit to resume from, or None."""
    return _manifest_problem(folder) or _content_problem(folder)


def _manifest_problem(folder: Path) -> str | None:
    """A manifest that does not match the files; None where it matches or there is none."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        listed = {str(name): (int(entry["bytes"]), str(entry["sha256"])) for name, entry in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"{MANIFEST} is unreadable"
    for name, (size, sha256) in sorted(listed.items()):
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} were written"
        if _sha256(path) != sha256:
            return f"{name} differs from what was written (sha256)"
    return None


def _content_problem(folder: Path) -> str | None:
    """A file the resume reads that is missing or does not parse."""
    for name in _STATE_FILES:
        if not (folder / name).is_file():
            return f"{name} is missing"
    if not any(folder.glob("rng_state*.pth")):
        return "rng_state.pth is missing"
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
        return "trainer_state.json is empty or not a trainer state"
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        return "it has no weights file (*.safetensors)"
    if (folder / "adapter_model.safetensors").is_file() and not (folder / "adapter_config.json").is_file():
        return "adapter_config.json is missing"
    for path in weights:
        try:
            check_safetensors_file(path)
        except WeightsError:
            return f"{path.name} is truncated or corrupt"
    for path in sorted([*folder.glob("*.pt"), *folder.glob("*.pth")]):
        if not _whole_zip(path):
            return f"{path.name} is truncated or corrupt"
    return None


def _whole_zip(path: Path) -> bool:
    """Whether a ``torch.save`` file is a zip whose every member passes its CRC (nothing is unpickled)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError):
        return False


def checkpoint_step(checkpoint: Path | None) -> int:
    """The step a resumed run starts at (0 for a fresh run)."""
    if checkpoint is None:
        return 0
    state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    return int(state.get("global_step", 0))
