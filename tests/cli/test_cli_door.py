"""Errors at the door (issue 37, item 2): a model, path or input that is not there gets one line
that names it and says what to do, in the CLI and as an ``InBedderError`` in Python, and the CLI
checks its arguments and input files before it loads a model.

"Before it loads a model" is observed, not timed: the engine's loader and ``train`` are wrapped
by spies that record each call and then run the real function, and the tests assert they were
never called.  The hub cases run with ``HF_HUB_OFFLINE=1`` so that they mean the same on a
machine with internet (no request leaves) as on one without.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.cli import main
from inbedder_integrations.engine import engine as engine_module
from inbedder_integrations.engine.hub import hub_errors, looks_like_path
from inbedder_integrations.errors import (
    HubUnreachableError,
    InBedderError,
    InputNotFoundError,
    ModelNotFoundError,
)

UNKNOWN_HUB_ID = "no-such-org/no-such-model"


def run_cli(*args: str, stdin: str = "a text\n") -> subprocess.CompletedProcess[str]:
    executable = shutil.which("inbedder", path=str(Path(sys.executable).parent))
    assert executable, "the console script 'inbedder' is not installed next to this python"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [executable, *args], input=stdin, capture_output=True, text=True, timeout=600, check=False, env=env
    )


@pytest.fixture
def loads(monkeypatch) -> list[tuple]:
    """Every model load the engine starts (the real loader still runs)."""
    calls: list[tuple] = []
    real = engine_module.get_loaded_model

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "get_loaded_model", spy)
    return calls


def refused(argv: list[str]) -> str:
    """The one-line message ``inbedder`` exits with (SystemExit's text, printed to stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    message = str(exit_info.value.code)
    assert message.count("\n") == 0, message
    assert isinstance(exit_info.value.__cause__, InBedderError), exit_info.value.__cause__
    return message


# --------------------------------------------------------------------------- models that are not there


@pytest.mark.parametrize("model", ["./nonexistent-folder", "no/such/folder", "~/no-such-folder-here"])
@pytest.mark.parametrize("command", [["embed", "--instruction", "What is it?"], ["info"]])
def test_a_missing_model_folder_is_one_line_before_any_load(model, command, loads):
    message = refused([*command, "--model", model])
    assert repr(model) in message and "no such folder or file" in message, message
    assert "hub id like 'org/name'" in message  # what to give instead
    assert loads == []


def test_a_missing_adapter_folder_is_one_line_before_any_load(loads):
    message = refused(["info", "--adapter", "./no-such-adapter"])
    assert "adapter './no-such-adapter': no such folder or file" in message
    assert loads == []


def test_from_pretrained_names_a_missing_folder():
    with pytest.raises(ModelNotFoundError, match=r"'\./no/such/folder': no such folder or file") as info:
        InBedder.from_pretrained("./no/such/folder")
    assert isinstance(info.value, FileNotFoundError)  # `except OSError` code keeps working


def test_from_pretrained_names_an_unknown_hub_id_when_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnreachableError) as info:
        InBedder.from_pretrained(UNKNOWN_HUB_ID)
    message = str(info.value)
    assert repr(UNKNOWN_HUB_ID) in message and "the Hub is unreachable (offline?)" in message
    assert isinstance(info.value, ModelNotFoundError) and isinstance(info.value, ConnectionError)


@pytest.mark.parametrize("model", [UNKNOWN_HUB_ID, "nonexistent-folder"])
def test_the_cli_says_one_line_for_a_hub_id_it_cannot_reach(model):
    """A bare name is a hub id (the Hub's syntax), so offline it is "not found locally" too."""
    result = run_cli("embed", "--instruction", "What is it?", "--model", model)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("inbedder embed: error: ") and repr(model) in lines[0]
    assert "not in the local Hugging Face cache" in lines[0] and "unreachable" in lines[0]
    assert result.stdout == ""


def test_the_cli_says_one_line_for_a_missing_folder():
    result = run_cli("embed", "--instruction", "What is it?", "--model", "./nonexistent-folder")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "inbedder embed: error: model './nonexistent-folder': no such folder or file"
        f" ({Path.cwd() / 'nonexistent-folder'}); give an existing model folder, a .gguf file,"
        " or a hub id like 'org/name'"
    ]


def _hub_response(status: int) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", "https://huggingface.co/api/models/x"))


def test_the_hubs_own_answers_become_one_line_errors():
    """With internet, the Hub answers: an unknown or gated repo, a missing revision."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    cases = [
        (RepositoryNotFoundError("404", response=_hub_response(404)), "no such repo on the Hugging Face Hub"),
        (GatedRepoError("403", response=_hub_response(403)), "is gated on the Hugging Face Hub"),
        (RevisionNotFoundError("404", response=_hub_response(404)), "has no revision 'v9'"),
        (httpx.ConnectError("Name or service not known"), "the Hub is unreachable"),
    ]
    for raised, expected in cases:
        with pytest.raises(ModelNotFoundError, match=expected) as info, hub_errors("org/x", "model", "v9"):
            raise raised
        assert "'org/x'" in str(info.value)
        assert "\n" not in str(info.value)


def test_paths_and_hub_ids_are_told_apart():
    for path in ("./x", "/x", "~/x", "a/b/c", "..", "a\\b", "org/../x", "x--y"):
        assert looks_like_path(path), path
    for hub_id in ("gpt2", "BrandonZYW/opt-1.3b-InBedder", "org/name.v2", "sentence-transformers/a_b"):
        assert not looks_like_path(hub_id), hub_id


# --------------------------------------------------------------------------- input checked before the model


def test_a_missing_training_file_is_named_before_the_hub_is_asked(monkeypatch):
    from inbedder_integrations.training import train as train_module

    calls = []
    real = train_module.train
    monkeypatch.setattr(train_module, "train", lambda config: calls.append(config) or real(config))
    message = refused(["train", "--data", "nosuch.jsonl", "--output", "unused"])
    assert message.startswith("inbedder train: error: --data 'nosuch.jsonl': no such file")
    assert "Hub" not in message.split(";")[0] and calls == []
    message = refused(["train", "--data", "nosuch.jsonl", "--output", "unused", "--model", "./gone"])
    assert "model './gone': no such folder" in message and calls == []  # the model is checked first


def test_an_empty_instruction_is_refused_before_the_model_loads(tmp_path, loads):
    source = tmp_path / "ok.txt"
    source.write_text("a text\n", encoding="utf-8")
    message = refused(["embed", "--instruction", "  ", "--input", str(source)])
    assert "--instruction must be a non-empty question" in message
    assert loads == []


def test_a_bad_jsonl_row_is_refused_before_the_model_loads(tmp_path, loads):
    source = tmp_path / "texts.jsonl"
    source.write_text('{"text": "one"}\n{"text": "two"}\n{"txt": "three"}\n', encoding="utf-8")
    message = refused(["embed", "--instruction", "What is it?", "--input", str(source)])
    assert f"{source}:3: each JSONL row needs a string field 'text'" in message
    assert loads == []


def test_a_text_file_that_is_not_utf8_is_refused_before_the_model_loads(tmp_path, loads):
    source = tmp_path / "texts.txt"
    source.write_bytes(b"fine\ncaf\xe9\n")
    message = refused(["embed", "--instruction", "What is it?", "--input", str(source)])
    assert f"{source}:2: not UTF-8" in message
    assert loads == []


@pytest.mark.parametrize("source", ["/dev/null", "empty.txt"])
def test_an_empty_input_says_it_has_no_texts(source, tmp_path, monkeypatch, loads):
    monkeypatch.chdir(tmp_path)
    Path("empty.txt").write_text("", encoding="utf-8")
    message = refused(["embed", "--instruction", "What is it?", "--input", source])
    assert f"--input {source!r} has no texts" in message and "no such file" not in message
    assert loads == []


def test_a_missing_input_or_a_folder_is_named(tmp_path, loads):
    missing = str(tmp_path / "missing.txt")
    with pytest.raises(SystemExit) as info:
        main(["embed", "--instruction", "What is it?", "--input", missing])
    assert isinstance(info.value.__cause__, InputNotFoundError)
    assert str(info.value.code).endswith(f"--input {missing!r}: no such file")
    message = refused(["embed", "--instruction", "What is it?", "--input", str(tmp_path)])
    assert "is a folder" in message
    assert loads == []


def test_an_empty_query_is_refused_before_any_store_or_model(tmp_path, loads):
    message = refused(["search", "corpus", " ", "--instruction", "What is it?", "--path", str(tmp_path)])
    assert "the query must be non-empty" in message
    assert loads == []
