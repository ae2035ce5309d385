"""The ``inbedder`` console script, run as a real subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


@pytest.mark.slow
def test_embed_jsonl_from_stdin_and_jsonl_input(tmp_path):
    result = run_cli("embed", "--instruction", INSTRUCTION, stdin="first text\nsecond text\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["text"] for row in rows] == ["first text", "second text"]
    assert len(rows[0]["embedding"]) == 576

    source = tmp_path / "docs.jsonl"
    source.write_text('{"text": "first text"}\n{"text": "second text", "id": "b"}\n', encoding="utf-8")
    output = tmp_path / "out.jsonl"
    result = run_cli("embed", "--instruction", INSTRUCTION, "--input", str(source), "--output", str(output))
    assert result.returncode == 0, result.stderr
    written = [json.loads(line) for line in output.read_text().splitlines()]
    np.testing.assert_allclose(
        [row["embedding"] for row in written], [row["embedding"] for row in rows], atol=1e-6
    )


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
