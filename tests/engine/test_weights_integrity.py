"""Weights are what they claim (issue 34, item 4).

- A file rewritten with its mtime set back (``cp -p``, ``rsync -a``, ``os.utime``) is hashed
  again: a damaged converted folder is converted again, and a model folder's fingerprint
  follows its weights.
- A checkpoint with missing, unexpected, non-finite or misshapen weights, or a pickle whose
  storage record is cut short, is refused with a ``WeightsError`` naming the tensor.
- A link leading out of a pickle-only model folder is refused before anything is copied.

Broken checkpoints are *randomly initialised* tiny Llamas built from a config (with the real
SmolLM2 tokenizer, :func:`tests.cross_cutting.test_security.tiny_llama`): no damaged real checkpoint exists
offline, and they exercise the loading rules, not embedding quality.  The real default model
is used where it matters: its converted folder, and the cost of the finiteness check.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.engine.conversion import conversion_damage
from inbedder_integrations.engine.weights import WeightsError
from tests.conftest import record_numbers
from tests.cross_cutting.test_security import TOPIC, digests, tiny_llama

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


# --------------------------------------------------------------------------- checkpoints that do not fit


def write_checkpoint(folder: Path, state: dict[str, Any], weights_format: str) -> None:
    """Replace the folder's weights by ``state``, as safetensors or as a pickle-only checkpoint."""
    import torch
    from safetensors.torch import save_file

    for old in [*folder.glob("*.safetensors"), *folder.glob("*.bin")]:
        old.unlink()
    if weights_format == "pickle":
        torch.save(state, folder / "pytorch_model.bin")
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))


def damaged_state(damage: str, state: dict[str, Any]) -> dict[str, Any]:
    import torch

    state = dict(state)
    if damage == "missing":
        del state[DOWN]
    elif damage == "unexpected":
        state["model.layers.0.mlp.extra_proj.weight"] = torch.zeros(4, 4)
    elif damage in ("nan", "inf"):
        state[DOWN] = state[DOWN].clone()
        state[DOWN][3, 5] = float(damage)
    elif damage == "shape":
        state[DOWN] = state[DOWN][:, :-1].clone()
    return state


EXTRA = r"model\.layers\.0\.mlp\.extra_proj\.weight"
EXPECTED = {
    "missing": rf"lacks 1 weight\(s\) the model needs: {DOWN}\. They would be filled with random values",
    "unexpected": rf"holds 1 weight\(s\) the model has no place for: {EXTRA}; it was saved from another",
    "nan": rf"1 weight tensor\(s\) hold NaN or infinite values: {DOWN} \(1 of 512 values\)",
    "inf": rf"1 weight tensor\(s\) hold NaN or infinite values: {DOWN} \(1 of 512 values\)",
    "shape": rf"{DOWN} \(checkpoint \[16, 31\], config \[16, 32\]\); the checkpoint and its config",
}


@pytest.mark.parametrize("weights_format", ["safetensors", "pickle"])
@pytest.mark.parametrize("damage", list(EXPECTED))
def test_a_checkpoint_that_does_not_fill_its_model_is_refused_by_name(
    tmp_path: Path, engine: InBedder, private_cache: Path, damage: str, weights_format: str
) -> None:
    """Today a missing weight is random (two loads, two sets of vectors under one fingerprint),
    an unexpected one is dropped, NaN or inf give NaN vectors, a shape ends in a raw RuntimeError."""
    from safetensors.torch import load_file

    folder = tiny_llama(tmp_path / "tiny", engine)
    write_checkpoint(
        folder, damaged_state(damage, load_file(str(folder / "model.safetensors"))), weights_format
    )
    before = digests(folder)
    with pytest.raises(WeightsError, match=EXPECTED[damage]):
        load(folder)
    assert digests(folder) == before


def test_training_loads_its_base_model_through_the_same_checks(
    tmp_path: Path, engine: InBedder, private_cache: Path
) -> None:
    """``inbedder train`` on a base whose checkpoint lacks a weight stops before training."""
    from safetensors.torch import load_file

    from inbedder_integrations.training.train import TrainConfig, train

    folder = tiny_llama(tmp_path / "base", engine)
    write_checkpoint(
        folder, damaged_state("missing", load_file(str(folder / "model.safetensors"))), "safetensors"
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        json.dumps({"instruction": TOPIC, "input": "a match report", "output": "football"}) + "\n"
    )
    config = TrainConfig(
        data=str(rows), output_dir=str(tmp_path / "out"), base_model=str(folder), max_steps=1
    )
    with pytest.raises(WeightsError, match=EXPECTED["missing"]):
        train(config)
    assert not (tmp_path / "out").exists()


def test_tied_weights_are_neither_missing_nor_unexpected(
    tmp_path: Path, engine: InBedder, private_cache: Path
) -> None:
    """lm_head tied to embed_tokens: a checkpoint may leave it out (SmolLM2's does) or carry it."""
    from safetensors.torch import load_file

    folder = tiny_llama(tmp_path / "tied", engine)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": True}))
    state = load_file(str(folder / "model.safetensors"))
    without_head = {k: v for k, v in state.items() if k != "lm_head.weight"}
    for weights in (
        without_head,
        {**without_head, "lm_head.weight": state["model.embed_tokens.weight"].clone()},
    ):
        write_checkpoint(folder, weights, "safetensors")
        loaded = load(folder)
        assert np.isfinite(loaded.embed(TEXTS, TOPIC)).all()
        loaded.close()


def cut_record(path: Path, record_suffix: str, keep: int) -> None:
    """Rewrite a torch zip file with one storage record cut to ``keep`` bytes; every other
    record, and the zip's own sizes and checksums, stay consistent."""
    cut = path.with_suffix(".cut")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(cut, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info, data[:keep] if info.filename.endswith(record_suffix) else data)
    cut.replace(path)


def test_a_pickle_whose_storage_record_is_cut_short_is_refused_by_name(
    tmp_path: Path, engine: InBedder, private_cache: Path
) -> None:
    """torch.load(mmap=True) would lend the tensor the bytes of the records that follow."""
    import torch

    folder = tiny_llama(tmp_path / "cut", engine, pickle_weights=True)
    first_key = next(iter(torch.load(folder / "pytorch_model.bin", weights_only=True)))
    cut_record(folder / "pytorch_model.bin", "/data/0", keep=1000)
    with pytest.raises(
        WeightsError,
        match=rf"tensor '{first_key}' needs \d+ bytes but its storage record \S+/data/0 holds 1000",
    ):
        load(folder)
    assert not list((private_cache / "converted").glob("*")), "nothing converted"


def test_non_finite_adapter_weights_are_refused_by_name(
    tmp_path: Path, engine: InBedder, private_cache: Path
) -> None:
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    base = tiny_llama(tmp_path / "base", engine)
    adapter = tmp_path / "adapter"
    model = AutoModelForCausalLM.from_pretrained(base)
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    state = load_file(str(adapter / "adapter_model.safetensors"))
    name = next(key for key in sorted(state) if "lora_B" in key)
    state[name] = state[name].clone()
    state[name][0, 0] = float("nan")
    save_file(state, str(adapter / "adapter_model.safetensors"))
    with pytest.raises(WeightsError, match=r"adapter .*: 1 weight tensor\(s\) hold NaN .*lora_B"):
        InBedder.from_pretrained(str(base), adapter=str(adapter), dtype="float32")


def test_the_finiteness_check_is_cheap_on_the_default_model(engine: InBedder) -> None:
    """Run at every load; timed on the real default (135M parameters, fp32)."""
    from inbedder_integrations.engine.weights import check_finite

    state = engine.model.state_dict()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        check_finite(state.items(), name="default")
        times.append(time.perf_counter() - start)
    key = "model.layers.3.self_attn.v_proj.weight"
    planted = dict(state)
    planted[key] = state[key].clone()
    planted[key][0, 0] = float("inf")
    with pytest.raises(WeightsError, match=rf"{key} \(1 of \d+ values\)"):
        check_finite(planted.items(), name="default")
    parameters = sum(p.numel() for p in engine.model.parameters())
    numbers = {"parameters": parameters, "median_seconds": round(statistics.median(times), 3)}
    record_numbers("weights", "finiteness check", numbers)
    assert statistics.median(times) < 2.0


# --------------------------------------------------------------------------- links


@pytest.mark.parametrize("linked", ["pytorch_model.bin", "notes.txt"])
def test_a_link_leaving_a_pickle_model_folder_is_refused_and_nothing_is_copied(
    tmp_path: Path, engine: InBedder, private_cache: Path, linked: str
) -> None:
    """Converting copies the folder's files into the cache: one linking elsewhere (another
    user's file, /etc) would be copied with it."""
    folder = tiny_llama(tmp_path / "linked", engine, pickle_weights=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    if linked == "pytorch_model.bin":
        shutil.move(folder / linked, outside / linked)
    else:
        (outside / linked).write_text("a secret that is not the model's")
    (folder / linked).symlink_to(outside / linked)
    with pytest.raises(WeightsError, match=rf"link outside it \({linked} -> {outside / linked}\)"):
        load(folder)
    assert not (private_cache / "converted").exists() or not list((private_cache / "converted").iterdir())


def test_a_hub_cache_snapshot_whose_files_link_to_its_blobs_converts(
    tmp_path: Path, engine: InBedder, private_cache: Path
) -> None:
    """The Hugging Face cache's layout: snapshot files are links into the repo's ``blobs``."""
    made = tiny_llama(tmp_path / "made", engine, pickle_weights=True)
    repo = tmp_path / "hub" / "models--someone--tiny-pickle"
    snapshot = repo / "snapshots" / "0123abcd"
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for index, path in enumerate(sorted(made.iterdir())):
        blob = repo / "blobs" / f"blob{index}"
        shutil.copyfile(path, blob)
        (snapshot / path.name).symlink_to(Path("..", "..", "blobs", blob.name))
    loaded = load(snapshot)
    assert Path(loaded.info()["source"]).parent == private_cache / "converted"
    assert np.isfinite(loaded.embed(TEXTS, TOPIC)).all()
    loaded.close()
