"""Weights are what they claim (issue 34, item 4).

- A file rewritten with its mtime set back (``cp -p``, ``rsync -a``, ``os.utime``) is hashed
  again: a damaged converted folder is converted again, and a model folder's fingerprint
  follows its weights.

Models are *randomly initialised* tiny Llamas built from a config (with the real
SmolLM2 tokenizer, :func:`tests.test_security.tiny_llama`): no damaged real checkpoint exists
offline, and they exercise the loading rules, not embedding quality.  The real default model
is used where it matters: its converted folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.engine.conversion import conversion_damage

from .test_security import TOPIC, tiny_llama

TEXTS = ["weights that are what they claim", "a second text"]
DOWN = "model.layers.1.mlp.down_proj.weight"


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Conversions and the file-digest memo in a cache folder of the test's own."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("INBEDDER_CACHE", str(cache))
    return cache


def overwrite_keeping_mtime(path: Path, write: Callable[[Path], None]) -> None:
    """Change ``path``'s bytes in place, then set its mtime back, as ``cp -p`` or ``rsync -a`` do."""
    before = path.stat()
    time.sleep(0.05)  # the kernel's ctime clock ticks every few ms: let it move
    write(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns), "the premise"


def poke_nan(path: Path) -> None:
    """64 bytes of 0xff (NaN as float32) in the middle of the tensor data; the header stays valid."""
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        handle.write(b"\xff" * 64)


def load(folder: Path) -> InBedder:
    return InBedder.from_pretrained(str(folder), dtype="float32")


# --------------------------------------------------------------------------- a kept mtime


def test_the_default_models_converted_folder_damaged_with_its_mtime_kept_is_detected(
    engine: InBedder, private_cache: Path
) -> None:
    """The real default's conversion, its hashes memoised, then damaged with its mtime set back."""
    source = Path(engine.info()["source"])
    copy = private_cache / "converted" / source.name
    shutil.copytree(source, copy)
    assert conversion_damage(copy) == ""  # hashes it and memoises the hashes
    overwrite_keeping_mtime(copy / "model.safetensors", poke_nan)
    assert conversion_damage(copy) == "model.safetensors does not match its recorded sha256"


def test_a_converted_pickle_damaged_with_its_mtime_kept_is_converted_again(
    tmp_path: Path, engine: InBedder, private_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tiny_llama(tmp_path / "pickled", engine, pickle_weights=True)
    first = load(folder)
    vectors, fingerprint = first.embed(TEXTS, TOPIC), first.fingerprint
    converted = Path(first.info()["source"])
    first.close()  # the next load reads the files again
    assert conversion_damage(converted) == ""  # what every later load checks; memoises the hashes
    overwrite_keeping_mtime(converted / "model.safetensors", poke_nan)

    with caplog.at_level(logging.WARNING, logger="inbedder_integrations.engine.conversion"):
        again = load(folder)
    assert (
        "is damaged (model.safetensors does not match its recorded sha256); converting again" in caplog.text
    )
    assert conversion_damage(converted) == ""
    assert again.fingerprint == fingerprint
    np.testing.assert_array_equal(again.embed(TEXTS, TOPIC), vectors)
    again.close()


def test_a_model_folders_fingerprint_follows_its_weights_when_the_mtime_is_kept(
    tmp_path: Path, engine: InBedder, private_cache: Path
) -> None:
    from safetensors.torch import load_file, save_file

    folder = tiny_llama(tmp_path / "model", engine)
    weights = folder / "model.safetensors"
    first = load(folder)
    vectors, fingerprint = first.embed(TEXTS, TOPIC), first.fingerprint
    first.close()

    def retrain(path: Path) -> None:  # other values, same names, shapes and so the same size
        state = load_file(str(path))
        state[DOWN] = state[DOWN] * 3
        save_file(state, str(path), metadata={"format": "pt"})

    overwrite_keeping_mtime(weights, retrain)
    again = load(folder)
    assert not np.allclose(again.embed(TEXTS, TOPIC), vectors), "the premise: other weights, other vectors"
    assert again.fingerprint != fingerprint
    again.close()
