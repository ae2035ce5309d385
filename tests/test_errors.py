"""Errors the user should see as one line, and the one-home helpers behind them (JSONL, text hash).

No model is loaded here: every test runs in well under a second.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from inbedder_integrations import cli
from inbedder_integrations.cache import EmbeddingCache, text_sha256
from inbedder_integrations.chroma import InBedderEmbeddingFunction, InstructionMismatchError
from inbedder_integrations.corpus import (
    ChromaUnavailableError,
    CorpusDocument,
    RetryPolicy,
    load_documents,
    to_documents,
)
from inbedder_integrations.engine.weights import WeightsError
from inbedder_integrations.errors import (
    InBedderError,
    InvalidArgumentError,
    InvalidTypeError,
    MissingError,
    MissingExtraError,
    positive_int,
)
from inbedder_integrations.instructed import missing_extra
from inbedder_integrations.jsonl import read_jsonl

# --------------------------------------------------------------------------- the classes


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (InvalidArgumentError, ValueError),
        (InvalidTypeError, TypeError),
        (MissingError, LookupError),
        (MissingExtraError, ImportError),
        (InstructionMismatchError, ValueError),
        (ChromaUnavailableError, ConnectionError),
        (WeightsError, ValueError),
    ],
)
def test_user_errors_are_inbedder_errors_and_keep_their_builtin_base(error, builtin):
    assert issubclass(error, InBedderError) and issubclass(error, builtin)


def test_missing_extra_is_an_inbedder_import_error():
    error = missing_extra("chroma", "chromadb")
    assert isinstance(error, MissingExtraError) and isinstance(error, ImportError)
    assert "pip install 'inbedder-integrations[chroma]'" in str(error)


@pytest.mark.parametrize("value", [1, 7, 2**40])
def test_positive_int_returns_its_value(value):
    assert positive_int("n", value) == value


@pytest.mark.parametrize("value", [0, -1, True, False, 1.0, "3", None])
def test_positive_int_names_the_argument(value):
    with pytest.raises(InvalidArgumentError, match=rf"^n must be a positive int, got {value!r}$"):
        positive_int("n", value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: EmbeddingCache(max_bytes=0), "max_bytes must be a positive int, got 0"),
        (lambda: RetryPolicy(attempts=0), "attempts must be a positive int, got 0"),
        (lambda: RetryPolicy(attempts=True), "attempts must be a positive int, got True"),
        (lambda: RetryPolicy(first_delay=2, max_delay=1), "need 0 <= first_delay <= max_delay"),
        (
            lambda: InBedderEmbeddingFunction.validate_config(
                {
                    "model": "m",
                    "instruction": "q?",
                    "query_instruction": "q?",
                    "model_kwargs": {},
                    "fingerprint": "f",
                    "dim": 0,
                }
            ),
            "inbedder config 'dim' must be a positive int, got 0",
        ),
        (lambda: to_documents([b"bytes"]), r"documents\[0\] must be a str or a mapping"),
        (lambda: to_documents([{"text": "a", "id": "x"}, {"text": "b", "id": "x"}]), "reuses id 'x'"),
    ],
)
def test_bad_caller_input_raises_inbedder_errors(make, message):
    with pytest.raises(InBedderError, match=message):
        make()


def test_index_with_ray_checks_its_counts_first():
    distributed = pytest.importorskip("inbedder_integrations.distributed")
    for argument in ("actors", "batch_size"):
        with pytest.raises(InvalidArgumentError, match=f"{argument} must be a positive int, got 0"):
            distributed.index_with_ray("docs.jsonl", "corpus", ["q?"], host="h", **{argument: 0})


# --------------------------------------------------------------------------- main: one line or a traceback


@pytest.mark.parametrize(
    "error",
    [
        InvalidArgumentError("bad --thing"),
        InstructionMismatchError("c", "instruction", "a?", "b?"),
        FileNotFoundError("no such file: x.txt"),
        ModuleNotFoundError("No module named 'datasets'", name="datasets"),
        missing_extra("chroma", "chromadb"),
    ],
)
def test_main_reports_user_errors_as_one_line(monkeypatch, error):
    def run(args):
        raise error

    monkeypatch.setattr(cli.embedding, "cmd_info", run)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["info"])
    message = str(exit_info.value.code)
    assert message.startswith("inbedder info: error: ") and str(error) in message
    assert "\n" not in message.split("Install it with")[0]


@pytest.mark.parametrize(
    "error",
    [
        TypeError("unsupported operand type(s)"),
        ValueError("a library's own ValueError"),
        KeyError("pooling"),
        AttributeError("'NoneType' object has no attribute 'dim'"),
        ModuleNotFoundError(
            "No module named 'inbedder_integrations.gone'", name="inbedder_integrations.gone"
        ),
    ],
)
def test_main_lets_bugs_raise_with_their_traceback(monkeypatch, error):
    def run(args):
        raise error

    monkeypatch.setattr(cli.embedding, "cmd_info", run)
    with pytest.raises(type(error)) as raised:
        cli.main(["info"])
    assert raised.value is error


def test_bad_cli_input_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match=r"^inbedder embed: error: --output must end in \.npy or \.jsonl"):
        cli.main(["embed", "--instruction", "q?", "--output", str(tmp_path / "out.csv")])
    with pytest.raises(SystemExit, match=r"^inbedder index: error: --ray writes into a Chroma server"):
        cli.main(["index", "docs", "--name", "corpus", "--instruction", "q?", "--ray"])


# --------------------------------------------------------------------------- JSONL


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_read_jsonl_skips_blank_lines_and_reads_gzip(tmp_path):
    rows = [{"text": "a"}, {"text": "b", "id": 2}]
    body = "\n".join(json.dumps(row) for row in rows[:1]) + "\n\n  \n" + json.dumps(rows[1]) + "\n"
    assert list(read_jsonl(write(tmp_path / "rows.jsonl", body))) == rows
    packed = tmp_path / "rows.jsonl.gz"
    packed.write_bytes(gzip.compress(body.encode()))
    assert list(read_jsonl(packed)) == rows
    assert list(read_jsonl(body.splitlines(), "stdin", objects=False)) == rows


NEEDS_TEXT = r"rows\.jsonl:1: each JSONL row needs a string field 'text'"


@pytest.mark.parametrize(
    ("body", "options", "message"),
    [
        ('{"text": "a"}\n{"text": \n', {}, r"rows\.jsonl:2: not valid JSON \(Expecting value\)"),
        ('{"text": "a"}\n\n[1, 2]\n', {}, r"rows\.jsonl:3: each JSONL row must be a JSON object, got list"),
        ('{"txt": "a"}\n', {"text_fields": ["text"]}, NEEDS_TEXT),
        ('{"text": 3}\n', {"text_fields": ["text"]}, NEEDS_TEXT),
    ],
)
def test_read_jsonl_names_the_bad_line(tmp_path, body, options, message):
    with pytest.raises(InvalidArgumentError, match=message):
        list(read_jsonl(write(tmp_path / "rows.jsonl", body), **options))


def test_every_jsonl_reader_names_the_bad_line(tmp_path):
    from inbedder_integrations.evaluation.loaders import read_rows
    from inbedder_integrations.training.leakage import LeakageIndex, check_file
    from inbedder_integrations.training.train import load_rows

    bad = write(
        tmp_path / "bad.jsonl", '{"text": "a", "input": "a", "instruction": "q", "output": "x"}\n{oops\n'
    )
    readers = [
        lambda: load_documents(bad),
        lambda: read_rows(str(bad)),
        lambda: load_rows(str(bad)),
        lambda: check_file(bad, LeakageIndex([])),
    ]
    for read in readers:
        with pytest.raises(InvalidArgumentError, match=r"bad\.jsonl:2: not valid JSON"):
            read()
    with pytest.raises(
        InvalidArgumentError, match=r"bad\.jsonl:1: each JSONL row needs a string field 'input'"
    ):
        check_file(write(bad, '{"text": "no input"}\n'), LeakageIndex([]))
    with pytest.raises(FileNotFoundError):
        cli.iter_texts(str(tmp_path / "missing.jsonl"))
    texts = cli.iter_texts(str(write(tmp_path / "texts.jsonl", '{"text": "a"}\n\n{"text": "b"}\n')))
    assert list(texts) == ["a", "b"]


# --------------------------------------------------------------------------- the text hash


def test_one_text_hash_for_the_cache_and_the_corpus():
    for text in ["", "plain", "héllo wörld", "日本語のテキスト", "emoji 🙂"]:
        assert CorpusDocument(text, "id").text_hash == text_sha256(text)
        assert text_sha256(text) == hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(("text", "position"), [("\ud800", 0), ("before \udfff after", 7), ("ab\udc80", 2)])
def test_a_lone_surrogate_is_refused_by_both_with_the_same_clear_error(text, position):
    expected = rf"lone surrogate '\\u\w{{4}}' at character {position} cannot be encoded as UTF-8"
    with pytest.raises(InvalidArgumentError, match=expected) as cache_error:
        text_sha256(text)
    with pytest.raises(InvalidArgumentError) as corpus_error:
        _ = CorpusDocument(text, "id").text_hash
    assert str(corpus_error.value) == str(cache_error.value)
