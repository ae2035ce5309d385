"""The ``inbedder`` console script, run as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inbedder_integrations import InBedder, cli
from inbedder_integrations.cli import main

INSTRUCTION = "What is the topic?"


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("inbedder", path=str(Path(sys.executable).parent))
    assert executable, "the console script 'inbedder' is not installed next to this python"
    return subprocess.run(
        [executable, *args], input=stdin, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.slow
def test_embed_npy_matches_python_api(tmp_path, engine):
    source = tmp_path / "texts.txt"
    source.write_text("Our team won the cup\nStocks fell sharply\n\n", encoding="utf-8")
    output = tmp_path / "out.npy"
    result = run_cli(
        "embed", "--instruction", INSTRUCTION, "--input", str(source), "--output", str(output),
        "--dtype", "float32",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    vectors = np.load(output)
    assert vectors.dtype == np.float32 and vectors.shape == (3, 576)
    expected = engine.embed(["Our team won the cup", "Stocks fell sharply", ""], INSTRUCTION)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    umask = os.umask(0)
    os.umask(umask)
    assert output.stat().st_mode & 0o777 == 0o666 & ~umask, "the mode open() gives, not a temp file's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy", "texts.txt"], "no partial file left"


@pytest.mark.slow
def test_embed_jsonl_from_stdin_and_jsonl_input_match_the_engine(tmp_path):
    texts = ["first text", "second text"]
    expected = InBedder.from_pretrained("default", dtype="float32").embed(texts, INSTRUCTION)
    fp32 = ("--dtype", "float32")
    result = run_cli("embed", "--instruction", INSTRUCTION, *fp32, stdin="first text\nsecond text\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["text"] for row in rows] == texts
    assert [row["index"] for row in rows] == [0, 1]
    np.testing.assert_allclose([row["embedding"] for row in rows], expected, atol=1e-5)

    source = tmp_path / "docs.jsonl"
    source.write_text('{"text": "first text"}\n{"text": "second text", "id": "b"}\n', encoding="utf-8")
    output = tmp_path / "out.jsonl"
    result = run_cli(
        "embed", "--instruction", INSTRUCTION, "--input", str(source), "--output", str(output), *fp32
    )
    assert result.returncode == 0, result.stderr
    written = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["text"] for row in written] == texts
    np.testing.assert_allclose([row["embedding"] for row in written], expected, atol=1e-5)


@pytest.mark.slow
def test_library_noise_is_off_unless_verbose(tmp_path):
    """transformers' "Loading weights" bar only with --verbose, no FutureWarning without it; the
    command's own progress bar either way.  (Which warnings the libraries raise changes with their
    versions: peft 0.21 raised a FutureWarning while merging the adapter, 0.22 none, so a verbose run
    is not asked for one.)"""
    command = ("embed", "--instruction", INSTRUCTION, "--no-cache", "--progress")
    quiet = run_cli(*command, stdin="a text\n")
    assert quiet.returncode == 0, quiet.stderr
    assert "Loading weights" not in quiet.stderr and "FutureWarning" not in quiet.stderr, quiet.stderr
    assert "1text [" in quiet.stderr, quiet.stderr  # our own --progress bar

    for verbose in (["--verbose", *command], [*command, "--verbose"]):
        loud = run_cli(*verbose, stdin="a text\n")
        assert loud.returncode == 0, loud.stderr
        assert "Loading weights" in loud.stderr, loud.stderr
        assert loud.stdout.splitlines()[0] == quiet.stdout.splitlines()[0]


def test_library_settings_are_restored_after_a_command(monkeypatch):
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as transformers_logging

    seen = {}

    def run(args):
        seen["bars"] = transformers_logging.is_progress_bar_enabled()
        seen["verbosity"] = transformers_logging.get_verbosity()

    before = (transformers_logging.is_progress_bar_enabled(), transformers_logging.get_verbosity())
    monkeypatch.setattr(cli.embedding, "cmd_cache", run)
    main(["cache", "info"])
    assert seen == {"bars": False, "verbosity": transformers_logging.ERROR}
    assert (transformers_logging.is_progress_bar_enabled(), transformers_logging.get_verbosity()) == before
    assert not hub_utils.are_progress_bars_disabled()
    main(["cache", "info", "--verbose"])
    assert seen == {"bars": before[0], "verbosity": before[1]}


def test_eval_baseline_gets_every_model_option_but_the_adapter(monkeypatch, tmp_path):
    """The untuned base of ``inbedder eval --baselines`` is the model under test minus its adapter."""
    from inbedder_integrations.evaluation import baselines

    calls = []

    class FakeEngine:
        def info(self):
            return {"adapter": "shipped"}

    def from_pretrained(model, **options):
        calls.append((model, options))
        return FakeEngine()

    monkeypatch.setattr(InBedder, "from_pretrained", staticmethod(from_pretrained))
    monkeypatch.setattr(baselines, "MiniLMEmbedder", lambda: "minilm")
    cache = str(tmp_path / "vectors.sqlite")
    args = cli.build_parser().parse_args(
        ["eval", "--baselines", "--pooling", "last_prompt_token", "--max-length", "128", "--allow-pickle",
         "--dtype", "float32", "--device", "cpu", "--cache-path", cache]
    )  # fmt: skip
    embedders = cli._eval_embedders(args)
    assert [getattr(e, "name", e) for e in embedders] == [
        "minilm", "default (untuned)", "default + shipped InBedder adapter"
    ]  # fmt: skip
    (tested_model, tested), (base_model, base) = calls
    assert tested == {
        "pooling": "last_prompt_token", "dtype": "float32", "device": "cpu", "max_length": 128,
        "allow_pickle": True, "cache": cache,
    }  # fmt: skip
    assert base_model == tested_model and base == {**tested, "adapter": None}


def test_eval_suites_are_checked_before_any_model_loads(capsys):
    args = cli.build_parser().parse_args(["eval", "--suites", "messages_emotion_intent, message_answers"])
    assert args.suites == ["messages_emotion_intent", "message_answers"]
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["eval", "--suites", "answers,emotion"])
    assert "unknown suites ['emotion']; known: bbc_topic_place," in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--card records a whole report"):
        main(["eval", "--suites", "answers", "--card", "runs/any"])


@pytest.mark.slow
def test_info_reports_model_fingerprint_dim_dtype_device(engine):
    result = run_cli("info", "--json", "--dtype", "float32")
    assert result.returncode == 0, result.stderr
    details = json.loads(result.stdout)
    assert details["model"] == "SmolLM2-135M-Instruct"
    assert details["fingerprint"] == engine.fingerprint
    assert (details["dim"], details["dtype"], details["device"]) == (576, "float32", "cpu")


def test_bad_input_exits_with_a_clear_message(tmp_path, engine):
    source = tmp_path / "bad.jsonl"
    source.write_text('{"txt": "typo in the field name"}\n', encoding="utf-8")
    with pytest.raises(SystemExit, match="needs a string field 'text'"):
        main(["embed", "--instruction", INSTRUCTION, "--input", str(source)])
    with pytest.raises(SystemExit, match=r"missing\.txt.*no such file"):
        main(["embed", "--instruction", INSTRUCTION, "--input", str(tmp_path / "missing.txt")])


def test_empty_instruction_is_reported(tmp_path, engine):
    source = tmp_path / "ok.txt"
    source.write_text("a text\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="instruction must be a non-empty question"):
        main(["embed", "--instruction", "", "--input", str(source), "--dtype", "float32"])
