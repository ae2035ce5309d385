"""recipes/scale_adapter.py: the shipped adapter's update moved towards the base, whole or by block."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from inbedder_integrations.training.lora import init_adapter_folder
from tests.conftest import load_recipe

SCALE = load_recipe("scale_adapter")
_LAYER = re.compile(r"\.layers\.(\d+)\.")


@pytest.fixture(scope="module")
def shipped() -> Path:
    return init_adapter_folder("default")


def _block(name: str) -> int:
    found = _LAYER.search(name)
    assert found, name
    return int(found.group(1))


def test_whole_scaling_changes_alpha_alone(shipped, tmp_path):
    out = SCALE.scale_adapter(shipped, 0.5, tmp_path / "half")
    before = json.loads((shipped / "adapter_config.json").read_text())
    after = json.loads((out / "adapter_config.json").read_text())
    assert after["lora_alpha"] == before["lora_alpha"] * 0.5
    weights = "adapter_model.safetensors"
    assert (out / weights).read_bytes() == (shipped / weights).read_bytes()


def test_block_scaling_touches_only_those_blocks_lora_b(shipped, tmp_path):
    out = SCALE.scale_adapter(shipped, 0.5, tmp_path / "top", range(20, 30))
    original, scaled = (
        load_file(str(shipped / "adapter_model.safetensors")),
        load_file(str(out / "adapter_model.safetensors")),
    )
    assert original.keys() == scaled.keys()
    touched = 0
    for name, tensor in original.items():
        if "lora_B" in name and _block(name) >= 20:
            assert torch.equal(scaled[name].float(), tensor.float() * 0.5), name
            touched += tensor.abs().sum().item() > 0
        else:
            assert torch.equal(scaled[name], tensor), name
    assert touched, "no non-zero lora_B weight in blocks 20-29: the check proves nothing"
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["lora_alpha"] == json.loads((shipped / "adapter_config.json").read_text())["lora_alpha"]


def test_bad_arguments_are_refused(shipped, tmp_path):
    with pytest.raises(SystemExit, match="within"):
        SCALE.scale_adapter(shipped, 1.5, tmp_path / "x")
    with pytest.raises(SystemExit, match="no lora_B"):
        SCALE.scale_adapter(shipped, 0.5, tmp_path / "y", range(40, 50))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists(), "a refused call wrote a folder"
    (tmp_path / "z").mkdir()
    with pytest.raises(SystemExit, match="exists"):
        SCALE.scale_adapter(shipped, 0.5, tmp_path / "z")
