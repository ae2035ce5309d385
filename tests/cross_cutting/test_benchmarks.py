"""The benchmark suite runs end to end (``--quick``: tiny sizes; speed is measured, not tested)."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / "benchmarks" / "run.py"


@pytest.mark.slow
def test_quick_benchmark_writes_every_section(tmp_path):
    docs = {page: page.read_text(encoding="utf-8") for page in (ROOT / "docs").glob("perf*")}
    output = tmp_path / "performance.md"
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--output", str(output)],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert {page: page.read_text(encoding="utf-8") for page in docs} == docs, (
        "--output must leave docs/ alone"
    )
    page = output.read_text(encoding="utf-8")
    for number in range(1, 8):
        assert f"### {number}. " in page, f"section {number} missing"
    data = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
    results = data["results"]
    sections = {"original", "sentence_transformers", "dtype", "flops", "embed_many", "cache", "scale"}
    assert set(results) == set(data["sections"]) == sections
    assert sorted(section["number"] for section in data["sections"].values()) == list(range(1, 8))
    # The JSON says where and how it was measured, and the page says it too.
    assert data["quick"] and data["command"] == "python benchmarks/run.py --quick"
    assert data["dtype"] in ("float32", "bfloat16") and isinstance(data["native_bf16"], bool)
    assert data["repeats"] == 1 and "median of 1 timed runs after a warm-up run" in page
    assert "one run per size, each in a new process" in page
    # The agreement columns are real measurements: every fast path gives the plain path's vectors.
    assert min(row["min cosine"] for row in results["embed_many"]) > 0.999
    assert results["sentence_transformers"][1]["min cosine to engine"] > 0.999
    assert results["dtype"][1]["min cosine to fp32"] > 0.999
    assert [row["K"] for row in results["embed_many"]] == [1, 2, 4, 8]
    # Memory while streaming is measured over the loaded model, at its peak and at the end.
    for row in results["scale"]:
        assert row["RSS after loading MB"] > 100
        assert row["peak RSS growth while streaming MB"] >= row["RSS growth while streaming MB"] - 1
    # Every docs page's figures render from a JSON of this schema.
    render_docs = runpy.run_path(str(ROOT / "benchmarks" / "render_docs.py"))
    for _, text in render_docs["pages"](ROOT):
        render_docs["render_text"](text, data)
