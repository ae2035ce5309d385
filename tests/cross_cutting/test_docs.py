"""Every ```python block in docs/ runs, in order, one namespace per page; every performance figure
in the docs is rendered from docs/performance.json."""

from __future__ import annotations

import ast
import re
import runpy
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ["engine.md", "langchain.md", "llama_index.md", "chroma.md", "serving.md"]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_page_snippets_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(DOCS / page)
    assert blocks, f"{page} has no python snippets"
    namespace: dict[str, object] = {"__name__": f"docs_{page}"}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"{page}[block {number}]", "exec"), namespace)


@pytest.mark.slow
def test_readme_corpus_snippet_runs_on_its_own(tmp_path, monkeypatch):
    """Each README snippet is read (and copied) alone: the corpus one defines its own texts."""
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(DOCS.parent / "README.md")
    (corpus_block,) = [block for block in blocks if "InstructedCorpus" in block]
    namespace: dict[str, object] = {"__name__": "docs_readme_corpus"}
    exec(compile(corpus_block, "README.md[corpus]", "exec"), namespace)
    hits = namespace["hits"]
    assert isinstance(hits, list) and len(hits) == 1


def test_engine_md_shows_what_answer_returns(engine):
    """The answer engine.md prints is what today's code returns (fp32, the session's engine)."""
    page = (DOCS / "engine.md").read_text(encoding="utf-8")
    call = re.search(r"engine\.answer\((\[.*?\]), (\".*?\")\)\n# (\[.*?\])\n", page)
    assert call, 'engine.md has no `engine.answer([...], "...")` line followed by `# [...]`'
    texts, question, shown = (ast.literal_eval(group) for group in call.groups())
    assert engine.answer(texts, question) == shown


# --------------------------------------------------------------------------- performance figures

ROOT = DOCS.parent
render_docs = SimpleNamespace(**runpy.run_path(str(ROOT / "benchmarks" / "render_docs.py")))


def test_every_performance_figure_comes_from_performance_json():
    """Generated blocks equal what docs/performance.json gives, and no page quotes a speed ratio,
    throughput, fraction of peak or FLOP rate outside them (fix: python benchmarks/render_docs.py)."""
    assert render_docs.problems(ROOT) == []


def test_figures_say_which_machine_and_dtype_they_come_from():
    data = render_docs.load(DOCS / "performance.json")
    assert data["dtype"] in ("float32", "bfloat16") and isinstance(data["native_bf16"], bool)
    for name in ("performance-header", "engine-dtype", "engine-fast-paths", "scaling-capacity"):
        text = " ".join(render_docs.BLOCKS[name](data).split())
        assert data["dtype"] in text and "native bf16" in text, name


def copy_docs(root: Path) -> None:
    (root / "docs").mkdir()
    for page in [*DOCS.glob("*.md"), DOCS / "performance.json"]:
        shutil.copy(page, root / "docs" / page.name)
    shutil.copy(ROOT / "README.md", root / "README.md")


def test_the_check_fails_on_a_stale_or_stray_figure(tmp_path):
    copy_docs(tmp_path)
    assert render_docs.problems(tmp_path) == []
    data = render_docs.load(tmp_path / "docs" / "performance.json")
    data["results"]["cache"][1]["speed-up"] = 839.2  # the figure engine.md used to quote
    stale = render_docs.problems(tmp_path, data)
    assert {line.split(":")[0] for line in stale} == {"docs/engine.md", "docs/performance.md"}

    chroma = tmp_path / "docs" / "chroma.md"
    lines = chroma.read_text(encoding="utf-8").count("\n")
    stray = [
        "A warm cache is ~840x faster than the model.",
        "The engine embeds 42 texts/s and 1,200 vectors/s.",
        "The forward pass reaches 47% of the bf16 matmul peak, 901 GFLOP/s.",
    ]
    chroma.write_text(chroma.read_text(encoding="utf-8") + "\n".join(stray) + "\n", encoding="utf-8")
    found = [line.split(" outside")[0] for line in render_docs.problems(tmp_path)]
    assert found == [
        f"docs/chroma.md:{lines + 1}: '840x'",
        f"docs/chroma.md:{lines + 2}: '42 texts/s'",
        f"docs/chroma.md:{lines + 2}: '1,200 vectors/s'",
        f"docs/chroma.md:{lines + 3}: '47% of the bf16 matmul peak'",
        f"docs/chroma.md:{lines + 3}: '901 GFLOP/s'",
    ]


def test_a_hand_edit_inside_a_block_or_an_unclosed_block_fails_the_check(tmp_path):
    copy_docs(tmp_path)
    engine = tmp_path / "docs" / "engine.md"
    text = engine.read_text(encoding="utf-8")
    engine.write_text(
        text.replace("faster than the model", "faster than the model (~840x)"), encoding="utf-8"
    )
    assert render_docs.problems(tmp_path) == [
        "docs/engine.md: a generated block differs from performance.json (run render_docs.py)"
    ]
    engine.write_text(text.replace("<!-- figures:end -->", "", 1), encoding="utf-8")
    assert "docs/engine.md: a figures:begin without its figures:end" in render_docs.problems(tmp_path)


def test_render_rewrites_only_the_blocks(tmp_path):
    copy_docs(tmp_path)
    page = tmp_path / "docs" / "performance.md"
    before = page.read_text(encoding="utf-8")
    data = render_docs.load(tmp_path / "docs" / "performance.json")
    data["results"]["embed_many"][2]["speed-up"] = 2.95
    assert tmp_path / "docs" / "engine.md" in render_docs.write(tmp_path, data)
    after = page.read_text(encoding="utf-8")
    assert "| 4 | 10.31 | 29.53 | 2.95 | 0.9997 |" in after
    assert render_docs.outside_blocks(after) == render_docs.outside_blocks(before)
