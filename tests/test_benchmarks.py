"""The benchmark suite runs end to end (``--quick``: tiny sizes; speed is measured, not tested)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


@pytest.mark.slow
def test_quick_benchmark_writes_every_section(tmp_path):
    output = tmp_path / "performance.md"
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--output", str(output)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    page = output.read_text(encoding="utf-8")
    for number in range(1, 8):
        assert f"### {number}. " in page, f"section {number} missing"
    results = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))["results"]
    sections = {"original", "sentence_transformers", "dtype", "flops", "embed_many", "cache", "scale"}
    assert set(results) == sections
    # The agreement columns are real measurements: every fast path gives the plain path's vectors.
    assert min(row["min cosine"] for row in results["embed_many"]) > 0.999
    assert results["sentence_transformers"][1]["min cosine to engine"] > 0.999
    assert results["dtype"][1]["min cosine to fp32"] > 0.999
    assert [row["K"] for row in results["embed_many"]] == [1, 2, 4, 8]
