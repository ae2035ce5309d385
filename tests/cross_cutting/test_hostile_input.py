"""Hostile files and arguments: nothing read from outside a folder, no line cut in two, and every
bad argument or path refused, by name, before any work starts (no model is loaded here)."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pytest

from inbedder_integrations.cli import main
from inbedder_integrations.corpus import load_documents
from inbedder_integrations.documents import text_files
from inbedder_integrations.errors import InvalidArgumentError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """docs/ with upper-case suffixes, links inside and links leading outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("a secret", encoding="utf-8")
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("plain", encoding="utf-8")
    (docs / "B.TXT").write_text("upper-case suffix", encoding="utf-8")
    (docs / "sub" / "c.Md").write_text("mixed-case suffix", encoding="utf-8")
    (docs / "notes.csv").write_text("not a text file", encoding="utf-8")
    (docs / "link.txt").symlink_to(outside / "secret.txt")
    (docs / "system.txt").symlink_to("/etc/hostname")
    (docs / "outside-dir").symlink_to(outside, target_is_directory=True)
    (docs / "inside.txt").symlink_to(docs / "a.txt")
    (docs / "sub" / "loop").symlink_to(docs, target_is_directory=True)  # a cycle
    return docs


def test_a_folder_is_read_without_leaving_it(folder: Path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="inbedder_integrations.documents")
    documents = load_documents(folder)
    assert sorted(d.id for d in documents) == ["B.TXT", "a.txt", "inside.txt", "sub/c.Md"]
    assert "a secret" not in {d.text for d in documents}
    assert "skipped 3 symlink(s) leading outside" in caplog.text
    for name in ("link.txt", "system.txt", "outside-dir"):
        assert name in caplog.text, f"{name} skipped without a word"
    followed = {d.id for d in load_documents(folder, follow_symlinks=True)}
    assert {"link.txt", "outside-dir/secret.txt", "system.txt"} <= followed
    assert not any(id_.startswith("sub/loop") for id_ in followed), "a link cycle is read once"


def test_text_files_sorts_and_keeps_paths_inside(folder: Path) -> None:
    files = text_files(folder)
    assert files == sorted(files) and all(
        not f.is_symlink() or f.resolve().is_relative_to(folder) for f in files
    )


def test_lines_end_at_newline_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ["line\u2028separator", "next\u0085line", "form\ffeed", "carriage\rreturn", "vertical\vtab"]
    path = tmp_path / "rows.jsonl"
    path.write_text(
        "".join(json.dumps({"text": t}, ensure_ascii=False) + "\r\n" for t in texts), encoding="utf-8"
    )
    assert [d.text for d in load_documents(path)] == texts
    # stdin, as bytes through the real text layer: one document per "\n".
    stdin = io.TextIOWrapper(io.BytesIO("\n".join(texts).encode("utf-8") + b"\n"), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    assert [d.text for d in load_documents("-")] == texts


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InvalidArgumentError, match=r"latin\.txt: not UTF-8 \(byte 0xe9 at offset 3\)"):
        load_documents(tmp_path)


def refused(argv: list[str], capsys) -> str:
    """What ``inbedder`` said when it refused ``argv`` (argparse exits 2; ours exit with a message)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    code = exit_info.value.code
    return code if isinstance(code, str) else capsys.readouterr().err


@pytest.mark.parametrize("size", ["-1", "0", "x"])
def test_batch_size_must_be_positive(size: str, tmp_path: Path, capsys) -> None:
    said = refused(
        ["index", str(tmp_path), "--name", "docs", "--instruction", "q?", "--batch-size", size], capsys
    )
    assert f"argument --batch-size: must be a positive int, got {size}" in said.replace("'", "")
    assert not (tmp_path / "chroma").exists()


def test_bad_names_and_paths_fail_before_any_work(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    said = refused(["index", "docs", "--name", "a..b", "--instruction", "q?", "--path", "store"], capsys)
    assert "no '..'" in said and not (tmp_path / "store").exists()
    said = refused(["search", "news", "q", "--instruction", "q?", "--path", "typo"], capsys)
    assert "--path 'typo': no Chroma store there" in said and not (tmp_path / "typo").exists()
    said = refused(["collections", "--path", "typo"], capsys)
    assert "no Chroma store there" in said and not (tmp_path / "typo").exists()
    assert "must be a positive int, got -2" in refused(["cluster", "bbc", "--limit", "-2"], capsys)
    (tmp_path / "texts.txt").write_text("one text\n", encoding="utf-8")
    said = refused(
        ["embed", "--instruction", "q?", "--input", "texts.txt", "--cache-path", ":memory:"], capsys
    )
    assert "':memory:' would cache nothing" in said
    assert "is a folder" in refused(["embed", "--instruction", "q?", "--input", "docs"], capsys)
    said = refused(["info", "--cache-path", ":memory:"], capsys)
    assert "':memory:' would cache nothing" in said and not (tmp_path / ":memory:").exists()


def test_embed_output_is_checked_before_the_model_loads(tmp_path: Path, capsys) -> None:
    source = tmp_path / "texts.jsonl"
    source.write_text(json.dumps({"text": "keep me"}) + "\n", encoding="utf-8")
    before = source.read_bytes()
    said = refused(
        ["embed", "--instruction", "q?", "--input", str(source), "--output", "/nonexistent/out.npy"], capsys
    )
    assert "folder '/nonexistent' does not exist" in said
    said = refused(["embed", "--instruction", "q?", "--input", str(source), "--output", str(source)], capsys)
    assert "is the --input file" in said and source.read_bytes() == before
    (tmp_path / "folder.npy").mkdir()
    said = refused(
        ["embed", "--instruction", "q?", "--input", str(source), "--output", str(tmp_path / "folder.npy")],
        capsys,
    )
    assert "is a folder" in said
    said = refused(["embed", "--instruction", "q?", "--input", str(source), "--output", "out.csv"], capsys)
    assert "must end in .npy or .jsonl" in said
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "locked").mkdir(mode=0o500)
        out = str(tmp_path / "locked" / "out.npy")
        assert "not writable" in refused(
            ["embed", "--instruction", "q?", "--input", str(source), "--output", out], capsys
        )
