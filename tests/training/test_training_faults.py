"""Training with inputs it cannot trust (issue 34, item 6): bad data rows and an init adapter of
another base or without weights are refused before training, in one line; a resume skips a
damaged checkpoint, or one a kill cut short, and ends where the unbroken run did."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from inbedder_integrations.engine.loading import DEFAULT_ADAPTER_DIR, resolve_source
from inbedder_integrations.engine.weights import WeightsError
from inbedder_integrations.errors import InvalidArgumentError
from inbedder_integrations.training.checkpoints import MANIFEST
from inbedder_integrations.training.lora import apply_lora
from inbedder_integrations.training.train import TrainConfig, load_rows, train, training_rows
from tests.training.test_training import ROW


def jsonl(*rows: object) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


MANY = [{**ROW, "input": f"Match report {i}: the striker scored."} for i in range(400)]


def cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


BAD_FILES = [
    ("string.jsonl", jsonl(ROW, "just a string"), r"string\.jsonl:2: each row must be a JSON object"),
    ("object.json", json.dumps(ROW).encode(), r"object\.json: a \.json data file must hold a JSON array"),
    ("array.json", json.dumps([ROW, "x"]).encode(), r"array\.json: row 2: each row must be a JSON object"),
    ("input.jsonl", jsonl(ROW, {**ROW, "input": 123}), r"input\.jsonl:2: 'input' must be a string, got a"),
    ("output.jsonl", jsonl({**ROW, "output": ["x"]}), r"output\.jsonl:1: 'output' must be a string, got an"),
    ("blank.jsonl", jsonl({**ROW, "instruction": " "}), r"blank\.jsonl:1: 'instruction' must be a non-empty"),
    ("empty-row.jsonl", jsonl(ROW, ROW, {}), r"empty-row\.jsonl:3: 'instruction' is missing"),
    ("two-bad.jsonl", jsonl({}, ROW, {}), r"two-bad\.jsonl:1: 'instruction' is missing .*\(2 bad rows in"),
    ("empty.jsonl", b"", r"empty\.jsonl: no rows"),
    ("empty.json", b"\n", r"empty\.json: no rows"),
    ("invalid.jsonl", jsonl(ROW) + b"{oops\n", r"invalid\.jsonl:2: not valid JSON"),
    ("invalid.json", b'[\n{"instruction": ', r"invalid\.json:2: not valid JSON"),
    ("cut.jsonl.gz", cut(gzip.compress(jsonl(*MANY))), r"cut\.jsonl\.gz:\d+: the gzip file is cut short"),
    ("cut.json.gz", cut(gzip.compress(json.dumps(MANY).encode())), r"cut\.json\.gz: the gzip file is cut"),
    ("latin1.jsonl", jsonl(ROW) + b'{"instruction": "caf\xe9"}\n', r"latin1\.jsonl:2: not UTF-8"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "message"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_a_bad_data_or_replay_file_is_named_by_file_row_and_field(tmp_path, name, body, message):
    bad, good = tmp_path / name, tmp_path / "good.jsonl"
    bad.write_bytes(body)
    good.write_bytes(jsonl(ROW))
    with pytest.raises(InvalidArgumentError, match=message):
        load_rows(str(bad))
    with pytest.raises(InvalidArgumentError, match=message):
        training_rows(TrainConfig(data=str(good), output_dir="", replay=str(bad)))


def test_every_row_is_checked_not_only_the_first_max_rows(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_bytes(jsonl(ROW, {**ROW, "family": "topic"}, {**ROW, "input": {"nested": 1}}))
    with pytest.raises(InvalidArgumentError, match=r"rows\.jsonl:3: 'input' must be a string, got an object"):
        load_rows(str(data), max_rows=1, families=["topic"])
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl: no such file"):
        load_rows(str(tmp_path / "missing.jsonl"))  # a file name, never a hub dataset id


def run_cli(*arguments: str) -> str:
    """What ``inbedder train`` ends with: one line for an error it reports."""
    from inbedder_integrations.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["train", *arguments])
    return str(stopped.value)


def test_the_cli_refuses_bad_data_in_one_line_before_any_model_loads(tmp_path):
    """The model folder is empty, so loading it would fail: only a check before loading it can give
    these messages (a missing folder is itself refused at the door, naming the model)."""
    bad, good, output = tmp_path / "bad.jsonl", tmp_path / "good.jsonl", tmp_path / "out"
    (tmp_path / "no-model").mkdir()
    bad.write_bytes(jsonl(ROW, {**ROW, "input": 123}))
    good.write_bytes(jsonl(ROW))
    common = ["--output", str(output), "--model", str(tmp_path / "no-model")]
    expected = f"inbedder train: error: {bad}:2: 'input' must be a string, got a number 123"
    assert run_cli("--data", str(bad), *common) == expected
    assert run_cli("--data", str(good), "--replay", str(bad), *common) == expected
    assert not output.exists()


def test_an_init_adapter_without_weights_is_refused_before_the_model_loads(tmp_path):
    """peft would look for the weights on the hub and end in a network traceback."""
    folder, data = tmp_path / "adapter", tmp_path / "rows.jsonl"
    folder.mkdir()
    (tmp_path / "no-model").mkdir()  # empty: loading it would fail, so the refusal comes first
    shutil.copy(DEFAULT_ADAPTER_DIR / "adapter_config.json", folder)
    data.write_bytes(jsonl(ROW))
    common = ["--data", str(data), "--output", str(tmp_path / "out"), "--model", str(tmp_path / "no-model")]
    said = run_cli(*common, "--init-adapter", str(folder))
    assert said == (
        f"inbedder train: error: init adapter {folder} has adapter_config.json but no "
        "adapter_model.safetensors: the adapter's weights are missing (an incomplete copy?)"
    )
    (folder / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    assert "is corrupt or truncated" in run_cli(*common, "--init-adapter", str(folder))
    assert not (tmp_path / "out").exists()


def test_an_adapter_whose_card_names_other_base_weights_is_refused_before_the_model_loads(tmp_path):
    folder, data, output = tmp_path / "other-base", tmp_path / "rows.jsonl", tmp_path / "out"
    shutil.copytree(DEFAULT_ADAPTER_DIR, folder)
    card = json.loads((folder / "inbedder_card.json").read_text(encoding="utf-8"))
    card.update(base_model="SmolLM2-135M", base_weights="sha256:" + "5" * 64)
    (folder / "inbedder_card.json").write_text(json.dumps(card), encoding="utf-8")
    data.write_bytes(jsonl(ROW))
    said = run_cli("--data", str(data), "--output", str(output), "--init-adapter", str(folder))
    assert (
        said.startswith(
            f"inbedder train: error: init adapter {folder} was trained on 'SmolLM2-135M' (weights sha256:5555"
        )
        and "not on SmolLM2-135M-Instruct (weights gguf-sha256:" in said
    )
    assert not output.exists()


def tiny_llama_adapter(folder: Path, *, layers: int, hidden: int, intermediate: int) -> Path:
    """A LoRA adapter of a randomly initialised Llama (no other base's weights exist offline;
    SmolLM2 is a Llama): its modules have SmolLM2's names, its blocks or widths are others.
    Its config names the modules by their last part, as the shipped adapter's does."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
        num_attention_heads=9, num_key_value_heads=3, vocab_size=64,
    )  # fmt: skip
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=4, target_modules=modules))
    model.save_pretrained(str(folder))
    adapter_config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    adapter_config["base_model_name_or_path"] = f"tiny-llama-{layers}-layers-{hidden}-wide"
    (folder / "adapter_config.json").write_text(json.dumps(adapter_config), encoding="utf-8")
    return folder


def test_an_adapter_of_another_base_is_refused_not_padded_with_a_fresh_lora(tmp_path):
    """Two blocks of SmolLM2's width: peft used to load them and train a fresh LoRA on the other
    28, report "continuing from the adapter", and save a config naming the other base."""
    two_blocks = tiny_llama_adapter(tmp_path / "two-blocks", layers=2, hidden=576, intermediate=1536)
    data, output = tmp_path / "rows.jsonl", tmp_path / "out"
    data.write_bytes(jsonl(ROW))
    config = TrainConfig(data=str(data), output_dir=str(output), max_steps=1, init_adapter=str(two_blocks))
    message = (
        rf"init adapter {re.escape(str(two_blocks))} \(trained on 'tiny-llama-2-layers-576-wide'\) "
        r"does not fit the model 'default': it has no weights for 392 LoRA tensors, "
        r"e\.g\. base_model\.model\.model\.layers\.10\."
    )
    with pytest.raises(WeightsError, match=message):
        train(config)
    assert not output.exists(), "nothing trained, no adapter saved"
    narrow = tiny_llama_adapter(tmp_path / "narrow", layers=30, hidden=72, intermediate=96)
    base = _base_model()
    with pytest.raises(WeightsError, match=r"trained on 'tiny-llama-30-layers-72-wide'\) does not fit"):
        apply_lora(base, kind="causal", config=TrainConfig(data="", output_dir="", init_adapter=str(narrow)))


def _base_model():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(resolve_source("default").load_path, dtype=torch.float32)


# --------------------------------------------------------------------------- checkpoints


def _adapter_tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory) -> TrainConfig:
    """4 steps of a fresh LoRA on the top block, a checkpoint every 2: the run to end equal to."""
    folder = tmp_path_factory.mktemp("unbroken")
    (folder / "rows.jsonl").write_bytes(jsonl(*MANY[:8]))
    config = TrainConfig(
        data=str(folder / "rows.jsonl"), output_dir=str(folder / "run"), max_steps=4, batch_size=2,
        max_rows=4, max_length=64, learning_rate=2e-3, logging_steps=1, save_steps=2, warmup_ratio=0.0,
        seed=0, lora_layers=1, lora_r=4,
    )  # fmt: skip
    train(config)
    return config


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.slow
def test_a_resume_skips_damaged_checkpoints_with_a_warning_naming_each(unbroken, tmp_path, caplog):
    run = tmp_path / "run"
    shutil.copytree(unbroken.output_dir, run)
    checkpoints = run / "checkpoints"
    for step in (6, 8, 10, 12):  # newer than the last good one, each damaged one way
        shutil.copytree(checkpoints / "checkpoint-4", checkpoints / f"checkpoint-{step}")
    damage = {
        4: ("trainer_state.json", lambda c: (c / "trainer_state.json").write_text("")),
        6: ("adapter_model.safetensors", lambda c: _truncate(c / "adapter_model.safetensors")),
        8: ("optimizer.pt", lambda c: _truncate(c / "optimizer.pt")),
        10: ("rng_state.pth is missing", lambda c: (c / "rng_state.pth").unlink()),
        12: ("scheduler.pt is missing", lambda c: (c / "scheduler.pt").unlink()),
    }
    for step, (_, harm) in damage.items():
        harm(checkpoints / f"checkpoint-{step}")
    for step in (6, 8, 12):  # without a manifest (as before manifests existed): their files are read
        (checkpoints / f"checkpoint-{step}" / MANIFEST).unlink()
    (checkpoints / "checkpoint-2" / MANIFEST).unlink()  # an intact one without a manifest still resumes
    with caplog.at_level(logging.WARNING, logger="inbedder_integrations.training"):
        resumed = train(dataclasses.replace(unbroken, output_dir=str(run)))
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    for step, (reason, _) in damage.items():
        assert any(f"checkpoint-{step} is damaged (" in line and reason in line for line in warnings), step
    assert resumed.steps == 4 and resumed.examples_per_second is not None, "steps 3 and 4 ran again"
    card = json.loads((run / "inbedder_card.json").read_text(encoding="utf-8"))
    assert card["resumed_from_step"] == 2
    expected, got = _adapter_tensors(Path(unbroken.output_dir)), _adapter_tensors(run)
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    assert sorted(path.name for path in checkpoints.iterdir()) == [
        "checkpoint-2", "checkpoint-4", "damaged-checkpoint-10", "damaged-checkpoint-12",
        "damaged-checkpoint-4", "damaged-checkpoint-6", "damaged-checkpoint-8",
    ], "damaged ones moved aside, never deleted"  # fmt: skip
    assert (checkpoints / "checkpoint-4" / MANIFEST).is_file()


KILL_DURING_THE_SAVE = """
import os, signal, sys
import torch
from transformers import Trainer
from inbedder_integrations.training.train import TrainConfig, train

save_rng = Trainer._save_rng_state
def killed_at_step_4(self, output_dir):
    if self.state.global_step == 4:  # weights, optimizer and scheduler written; rng and state not
        os.kill(os.getpid(), signal.SIGKILL)
    save_rng(self, output_dir)
Trainer._save_rng_state = killed_at_step_4
torch.set_num_threads({threads})  # the same arithmetic as the unbroken run in the test process
train(TrainConfig(**{config}))
"""


@pytest.mark.slow
def test_a_run_killed_during_a_save_resumes_from_the_last_whole_checkpoint(unbroken, tmp_path):
    config = dataclasses.replace(unbroken, output_dir=str(tmp_path / "run"))
    script = KILL_DURING_THE_SAVE.replace("{config}", repr(dataclasses.asdict(config)))
    script = script.replace("{threads}", str(torch.get_num_threads()))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    killed = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    cut_short = tmp_path / "run" / "checkpoints" / "checkpoint-4"
    assert (cut_short / "optimizer.pt").is_file() and not (cut_short / "trainer_state.json").exists()
    resumed = train(config)
    assert resumed.steps == 4 and resumed.examples_per_second is not None
    expected, got = _adapter_tensors(Path(unbroken.output_dir)), _adapter_tensors(tmp_path / "run")
    assert all(torch.equal(expected[k], got[k]) for k in expected), "it ends where the unbroken run did"
    assert train(config).examples_per_second is None, "and a rerun finds the new checkpoint-4 whole"
