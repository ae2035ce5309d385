"""`inbedder serve` from the command line: its settings (flags over a TOML or YAML file), and a
real server process that finishes its in-flight request when told to stop."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from inbedder_integrations import InBedder
from inbedder_integrations.cli import build_parser
from tests.conftest import free_port

pytest.importorskip("fastapi", reason="the 'serve' extra is part of the test install")
from inbedder_integrations.cli.serve import environment_name, serve_config
from inbedder_integrations.serving import ServeConfig, ServedInstruction

TOML = """\
model = "default"
max_queue = 64
api_key_file = "key.txt"

[model_kwargs]
dtype = "float32"

[instructions]
topic = "What is the topic of this text?"
mood = "How does the writer feel?"

[query_instructions]
topic = "Which topic is this question about?"
"""

YAML = """\
port: 9100
auto_truncate: true
instructions:
  topic: What is the topic of this text?
"""


def config_from(argv: list[str]) -> ServeConfig:
    return serve_config(build_parser().parse_args(["serve", *argv]))


def test_a_config_file_with_flags_on_top(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INBEDDER_API_KEY", raising=False)
    (tmp_path / "key.txt").write_text("  file-key \n", encoding="utf-8")
    (tmp_path / "serve.toml").write_text(TOML, encoding="utf-8")
    config = config_from(["--config", str(tmp_path / "serve.toml"), "--port", "9001", "--max-wait-ms", "2"])
    assert [(s.name, s.instruction, s.query) for s in config.instructions] == [
        ("topic", "What is the topic of this text?", "Which topic is this question about?"),
        ("mood", "How does the writer feel?", "How does the writer feel?"),
    ]
    assert (config.port, config.max_wait_ms, config.max_queue, config.host) == (9001, 2, 64, "127.0.0.1")
    assert config.api_key == "file-key" and "file-key" not in repr(config)
    assert config.model_kwargs == {"dtype": "float32"}
    assert config.served("topic:query") == "Which topic is this question about?"
    assert config.served("mood:query") == "How does the writer feel?" and config.served("nope") is None
    assert [name for name, _ in config.model_names()] == ["topic", "topic:query", "mood"]

    (tmp_path / "serve.yaml").write_text(YAML, encoding="utf-8")
    monkeypatch.setenv("INBEDDER_API_KEY", "env-key")
    config = config_from(
        ["--config", str(tmp_path / "serve.yaml"), "--instruction", "mood=How does it feel?"]
    )
    assert [s.name for s in config.instructions] == ["mood"], "flags replace the file's instructions"
    assert (config.port, config.auto_truncate, config.api_key) == (9100, True, "env-key")


@pytest.mark.parametrize(
    ("argv", "files", "says"),
    [
        ([], {}, "at least one instruction"),
        (["--instruction", "topic"], {}, "NAME=QUESTION"),
        (["--instruction", "a=Q?", "--instruction", "a=R?"], {}, "given twice"),
        (["--instruction", "a=Q?", "--query-instruction", "b=R?"], {}, "names no --instruction b"),
        (["--instruction", "embed=Q?"], {}, "taken by an endpoint"),
        (["--instruction", "a b=Q?"], {}, "letters, digits"),
        (["--instruction", "a=  "], {}, "non-empty question"),
        (["--instruction", "a=Q?", "--api-key-file", "key.txt"], {"key.txt": "\n"}, "is empty"),
        (["--config", "c.toml"], {"c.toml": "prot = 1\n"}, "unknown settings ['prot']"),
        (["--config", "c.json"], {"c.json": "{}"}, "a .toml, .yaml or .yml file"),
        (["--config", "c.toml"], {"c.toml": "instructions = 3\n"}, "table of name = question"),
        (
            ["--config", "c.toml"],
            {"c.toml": "max_queue = 0\n[instructions]\na = 'Q?'\n"},
            "max_queue must be",
        ),
    ],
)
def test_bad_settings_fail_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], files: dict[str, str], says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises((ValueError, TypeError)) as raised:
        config_from(argv)
    assert says in str(raised.value)


FILE_UNDER_ENV = """\
port = 9100
max_queue = 64
max_inputs = 500
auto_truncate = true
[model_kwargs]
dtype = "float32"
[instructions]
topic = "What is the topic of this text?"
"""


def test_the_command_line_wins_over_the_environment_over_the_file_over_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "serve.toml").write_text(FILE_UNDER_ENV, encoding="utf-8")
    environ = {
        "INBEDDER_CONFIG": str(tmp_path / "serve.toml"),
        "INBEDDER_PORT": "9200",
        "INBEDDER_MAX_QUEUE": "32",
        "INBEDDER_MAX_BATCH_TOKENS": "2048",
        "INBEDDER_AUTO_TRUNCATE": "false",
        "INBEDDER_INSTRUCTION": '["mood=How does it feel?", "place=Where is it?"]',
        "INBEDDER_DTYPE": "bfloat16",
        "INBEDDER_NO_CACHE": "1",
        "INBEDDER_CACHE": "/a/cache/folder",  # the package's cache folder: not the --cache flag
        "INBEDDER_INSTRUCTION_FIELD": "no",
    }
    # --port 8080 and --max-queue 1024 equal the defaults, and still win over both.
    args = build_parser().parse_args(["serve", "--port", "8080", "--max-queue", "1024"])
    config = serve_config(args, environ)
    assert (config.port, config.max_queue, config.max_batch_tokens) == (8080, 1024, 2048)
    assert (config.max_inputs, config.auto_truncate, config.allow_instruction_field) == (500, False, False)
    assert [served.name for served in config.instructions] == ["mood", "place"]
    assert (config.model_kwargs, config.cache) == ({"dtype": "bfloat16"}, False)
    assert config.max_body_bytes == ServeConfig.max_body_bytes, "untouched: the default"
    flags = build_parser().parse_args(
        ["serve", "--config", str(tmp_path / "serve.toml"), "--no-auto-truncate"]
    )
    assert serve_config(flags, {}).auto_truncate is False, "a flag turns a file's true off"


def test_help_names_each_options_environment_variable() -> None:
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    text = " ".join(serve.format_help().split())
    options = [a for a in serve._actions if a.option_strings and a.dest not in ("help", "verbose")]
    assert len(options) > 30
    for action in options:
        assert f"[env: {environment_name(action)}]" in text, action.dest
    assert environment_name(next(a for a in options if a.dest == "max_batch_tokens")) == (
        "INBEDDER_MAX_BATCH_TOKENS"
    )
    names = {action.dest: environment_name(action) for action in options}
    assert (names["cache"], names["cache_path"]) == ("INBEDDER_NO_CACHE", "INBEDDER_EMBEDDING_CACHE")
    assert len(set(names.values())) == len(names), "one variable per option"


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"INBEDDER_PORT": "eighty"}, "$INBEDDER_PORT='eighty': must be a port number"),
        ({"INBEDDER_AUTO_TRUNCATE": "maybe"}, "$INBEDDER_AUTO_TRUNCATE='maybe': must be true or false"),
        ({"INBEDDER_ALLOWED_HOST": "[1]"}, "must be a JSON list of strings"),
        ({"INBEDDER_POOLING": "max"}, "must be one of"),
    ],
)
def test_a_bad_environment_variable_is_named(environ: dict[str, str], says: str) -> None:
    args = build_parser().parse_args(["serve", "--instruction", "a=Q?"])
    with pytest.raises(ValueError) as raised:
        serve_config(args, environ)
    assert says in str(raised.value)


def test_bad_ports_are_refused() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--instruction", "a=Q?", "--port", "70000"])
    with pytest.raises(ValueError, match="port must be"):
        ServeConfig((ServedInstruction("a", "Q?"),), port=-1)


@pytest.mark.slow
def test_a_server_process_finishes_its_in_flight_request_on_sigterm(tmp_path: Path, engine: InBedder) -> None:
    process, url, headers = start_server_process(tmp_path, TOML)
    try:
        wait_until_healthy(url, process, tmp_path / "server.log")
        texts = [f"Message {i}: the parcel arrived late and broken." for i in range(24)]
        answers: list[httpx.Response] = []
        body = {"model": "mood", "input": texts}
        request = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{url}/v1/embeddings", json=body, headers=headers, timeout=300)
            )
        )
        request.start()
        time.sleep(1.0)  # the request is in the batcher now
        process.send_signal(signal.SIGTERM)
        request.join(300)
        # uvicorn re-raises the signal once it has shut down gracefully: the exit says SIGTERM.
        assert process.wait(timeout=120) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    assert answers and answers[0].status_code == 200, "the in-flight request was finished"
    vectors = np.asarray([item["embedding"] for item in answers[0].json()["data"]], dtype=np.float32)
    assert np.abs(vectors - engine.embed(texts, "How does the writer feel?")).max() <= 1e-5
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")
    log = (tmp_path / "server.log").read_text()
    assert "Waiting for connections to close" in log or "Finished server process" in log, log
    assert "process-key" not in log, "the key is never logged"
    started = [line for line in log.splitlines() if "serving " in line and " at http://" in line]
    fingerprint = InBedder.from_pretrained("default", dtype="float32").fingerprint
    assert len(started) == 1, log
    for part in ("SmolLM2-135M-Instruct", fingerprint, "float32", "cpu", "topic, topic:query, mood", url):
        assert part in started[0], started[0]


@pytest.mark.slow
def test_sigterm_with_more_work_than_the_grace_answers_503_and_exits_within_it(tmp_path: Path) -> None:
    """Two clients wait on far more work than a 6 s grace allows: both are answered 503 in their
    API's error shape, the abandoned texts are dropped, and the process exits within the grace."""
    grace = 6.0
    toml = TOML.replace(
        "max_queue = 64", f"max_queue = 4096\nmax_batch_texts = 8\nshutdown_grace_s = {grace}"
    )
    process, url, headers = start_server_process(tmp_path, toml)
    texts = [f"Message {i}: the parcel arrived late and broken." for i in range(2000)]
    answers: dict[str, httpx.Response] = {}

    def ask(path: str, body: dict[str, object]) -> None:
        answers[path] = httpx.post(f"{url}{path}", json=body, headers=headers, timeout=300)

    try:
        wait_until_healthy(url, process, tmp_path / "server.log")
        clients = [
            threading.Thread(target=ask, args=("/v1/embeddings", {"model": "mood", "input": texts})),
            threading.Thread(target=ask, args=("/embed", {"inputs": texts, "prompt_name": "topic"})),
        ]
        for client in clients:
            client.start()
        time.sleep(1.5)  # both are in the batcher now, one embedding, one queued
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        for client in clients:
            client.join(60)
        answered = time.monotonic() - signalled
        process.wait(timeout=60)
        exited = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
    log = (tmp_path / "server.log").read_text()
    assert answered < grace and exited < grace + 2, (answered, exited, log)
    openai, tei = answers["/v1/embeddings"], answers["/embed"]
    assert openai.status_code == 503 and openai.json()["error"]["type"] == "server_error", openai.text
    assert tei.status_code == 503 and tei.json()["error_type"] == "Overloaded", tei.text
    assert "shutting down" in openai.json()["error"]["message"]
    assert "Traceback" not in log and "CancelledError" not in log, log


def start_server_process(
    tmp_path: Path, toml: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    """``inbedder serve`` as a real process on a free port, from ``toml`` and the key
    ``process-key`` (when ``toml`` names key.txt), logging to ``tmp_path/server.log``; with its
    URL and auth header.  ``env``: the process's environment (default: this one's)."""
    (tmp_path / "key.txt").write_text("process-key\n", encoding="utf-8")
    (tmp_path / "serve.toml").write_text(toml, encoding="utf-8")
    port = free_port()
    executable = shutil.which("inbedder", path=str(Path(sys.executable).parent))
    assert executable
    command = [executable, "serve", "--config", "serve.toml", "--port", str(port), "--no-cache"]
    with (tmp_path / "server.log").open("w") as log:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env)
    return process, f"http://127.0.0.1:{port}", {"Authorization": "Bearer process-key"}


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.3)


def test_timeouts_limits_and_host_names_come_from_flags_or_a_file(tmp_path: Path) -> None:
    (tmp_path / "serve.toml").write_text(
        'allowed_hosts = ["embed.internal"]\nbody_timeout_s = 12\n[instructions]\ntopic = "Q?"\n',
        encoding="utf-8",
    )
    config = config_from(
        ["--config", str(tmp_path / "serve.toml"), "--header-timeout", "3", "--keep-alive", "2",
         "--max-connections", "9", "--shutdown-grace", "7"]
    )  # fmt: skip
    assert (config.header_timeout_s, config.body_timeout_s, config.keep_alive_s) == (3, 12, 2)
    assert (config.max_connections, config.shutdown_grace_s) == (9, 7)
    assert config.allowed_hosts == ("embed.internal",)
    flagged = config_from(["--instruction", "a=Q?", "--allowed-host", "x.lan", "--allowed-host", "y.lan"])
    assert flagged.allowed_hosts == ("x.lan", "y.lan")
    assert (flagged.header_timeout_s, flagged.max_connections) == (10, 256), "the documented defaults"
    for bad in (["--header-timeout", "0"], ["--shutdown-grace", "-1"]):
        with pytest.raises(ValueError, match="must be from"):
            config_from(["--instruction", "a=Q?", *bad])
