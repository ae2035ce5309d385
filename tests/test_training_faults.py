"""Training with inputs it cannot trust (issue 34, item 6): bad data rows and an init adapter of
another base or without weights are refused before training, in one line; a resume skips a
damaged checkpoint, or one a kill cut short, and ends where the unbroken run did."""

from __future__ import annotations

import gzip
import json

import pytest

from inbedder_integrations.errors import InvalidArgumentError
from inbedder_integrations.training.train import TrainConfig, load_rows, training_rows

from .test_training import ROW


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
    """The model path does not exist: only a check before loading it can give these messages."""
    bad, good, output = tmp_path / "bad.jsonl", tmp_path / "good.jsonl", tmp_path / "out"
    bad.write_bytes(jsonl(ROW, {**ROW, "input": 123}))
    good.write_bytes(jsonl(ROW))
    common = ["--output", str(output), "--model", str(tmp_path / "no-model")]
    expected = f"inbedder train: error: {bad}:2: 'input' must be a string, got a number 123"
    assert run_cli("--data", str(bad), *common) == expected
    assert run_cli("--data", str(good), "--replay", str(bad), *common) == expected
    assert not output.exists()
