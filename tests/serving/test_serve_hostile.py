"""`inbedder serve` against hostile and careless clients: each test sends what such a client
sends (raw sockets where a polite client library would not) to a real server on 127.0.0.1.

The engine is the session's real default model.  One test replaces two of an engine's
methods with ones that raise, to stand for a bug in the engine: no other way makes a
correct engine fail.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from inbedder_integrations import InBedder

pytest.importorskip("fastapi", reason="the 'serve' extra is part of the test install")
from inbedder_integrations.serving import ServeConfig, ServedInstruction, serve_in_background

TOPIC = "What is the topic of this text?"
MOOD = "How does the writer feel?"
KEY = "hostile-key-0123456789"
TEXTS = ["The striker scored twice.", "Shares fell after the bank's loss.", "I love this phone!"]


def config(**changes: object) -> ServeConfig:
    settings = {"port": 0, "api_key": KEY, "cache": False, "max_inputs": 100}
    instructions = (ServedInstruction("topic", TOPIC), ServedInstruction("mood", MOOD))
    return ServeConfig(instructions, **{**settings, **changes})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server_engine(engine: InBedder) -> InBedder:
    return InBedder.from_pretrained("default", dtype="float32", cache=False)


@pytest.fixture(scope="module")
def server(server_engine: InBedder) -> Iterator[str]:
    with serve_in_background(config(), server_engine) as running:
        yield running.url


@pytest.fixture(scope="module")
def open_server(server_engine: InBedder) -> Iterator[str]:
    """A key-less server, as on a developer's laptop."""
    with serve_in_background(
        config(api_key=None, allowed_hosts=("embed.internal",)), server_engine
    ) as running:
        yield running.url


AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    text = httpx.get(f"{url}/metrics", headers=AUTH).text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith((name + " ", name + "{")):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.split()[-1])
    return total


def embedded(url: str) -> float:
    """Texts that reached the model: the sum of every batch's size."""
    return metric(url, "inbedder_batch_texts_sum")


def message(response: httpx.Response) -> str:
    """The error message of either API's error body."""
    error = response.json()["error"]
    return error["message"] if isinstance(error, dict) else error


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def raw_request(url: str, body: bytes, *, path: str = "/v1/embeddings", length: int | None = None) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {address(url)[0]}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body) if length is None else length}\r\n\r\n"
    )
    return head.encode() + body


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """What the server sends until it closes ``sock``, and how long it took."""
    sock.settimeout(timeout)
    started, data = time.monotonic(), b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - started


class Records(logging.Handler):
    """Log records of the package and of uvicorn (whose loggers do not reach pytest's caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at_least(self, level: int) -> list[logging.LogRecord]:
        return [record for record in self.records if record.levelno >= level]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("inbedder_integrations", "uvicorn.error", "uvicorn")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


# --------------------------------------------------------------------------- 1: open routes


def test_a_post_to_health_is_refused_before_its_body_is_read(server: str, open_server: str) -> None:
    for url, status in ((server, 401), (open_server, 405)):
        with socket.create_connection(address(url)) as sock:
            # Headers promise 4 MB that never come: only a refusal before the body answers.
            sock.sendall(raw_request(url, b"", path="/health", length=4_000_000).replace(KEY.encode(), b"x"))
            sock.settimeout(5)
            head = sock.recv(65536).decode()
        assert head.startswith(f"HTTP/1.1 {status}"), head
    for path in ("/health", "/info", "/metrics", "/v1/models"):
        response = httpx.post(f"{server}{path}", content=b"{}", headers=AUTH)
        assert response.status_code == 405 and "answers GET" in message(response)
    assert httpx.head(f"{server}/health").status_code == 200, "HEAD /health stays open"


# --------------------------------------------------------------------------- 2: unhandled 500s


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/v1/embeddings", b'{"input": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", 400, "nested too deeply"),
        ("/v1/embeddings", b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
        ("/embed", b'{"inputs": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", 400, "nested too deeply"),
        (
            "/v1/embeddings",
            b'{"model": "topic", "input": "x", "dimensions": ' + b"9" * 5_000 + b"}",
            400,
            "JSON",
        ),
        ("/embed", b'{"inputs": []}', 422, "inputs must not be empty"),
        ("/mood/embed", b'{"inputs": []}', 422, "inputs must not be empty"),
    ],
)
def test_bodies_that_crashed_the_server_get_a_4xx_and_the_connection_serves_on(
    server: str, path: str, body: bytes, status: int, says: str
) -> None:
    before = embedded(server)
    with httpx.Client(headers=AUTH, timeout=60) as client:
        response = client.post(f"{server}{path}", content=body)
        assert response.status_code == status, response.text
        assert says in message(response)
        assert response.headers.get("connection") != "close"
        # The pooled connection is still good: the next request on it is answered.
        again = client.post(f"{server}/v1/embeddings", json={"model": "topic", "input": TEXTS[:1]})
        assert again.status_code == 200
    assert embedded(server) == before + 1


# --------------------------------------------------------------------------- 4, 6: clients that leave


def test_clients_that_disconnect_are_never_embedded_and_are_counted(server: str, records: Records) -> None:
    before, abandoned = embedded(server), metric(server, "inbedder_abandoned_texts_total")
    # Every client sends while a long request holds the model: a client that closes the
    # moment its body is sent to an idle server may reach the model before the server
    # reads the close (a race no server can win), which made this test flaky.
    long_texts = [f"A long request, text number {i}, about the weather." for i in range(96)]
    answer: list[httpx.Response] = []
    blocker = threading.Thread(
        target=lambda: answer.append(
            httpx.post(
                f"{server}/v1/embeddings",
                json={"model": "topic", "input": long_texts},
                headers=AUTH,
                timeout=300,
            )
        )
    )
    blocker.start()
    time.sleep(0.3)
    # 20 clients send 10 texts each and close at once.
    for client in range(20):
        body = json.dumps({"model": "mood", "input": [f"client {client} text {i}" for i in range(10)]})
        with socket.create_connection(address(server)) as sock:
            sock.sendall(raw_request(server, body.encode()))
    # 30 more wait in the queue, then give up while still queued.
    sockets = []
    for client in range(30):
        body = json.dumps({"model": "mood", "input": [f"queued {client} text {i}" for i in range(10)]})
        sock = socket.create_connection(address(server))
        sock.sendall(raw_request(server, body.encode()))
        sockets.append(sock)
    time.sleep(0.3)
    for sock in sockets:
        sock.close()
    blocker.join(300)
    assert answer and answer[0].status_code == 200
    deadline = time.monotonic() + 10
    while metric(server, "inbedder_abandoned_texts_total") < abandoned + 500 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert embedded(server) == before + len(long_texts), "no text of a client that left reached the model"
    assert metric(server, "inbedder_abandoned_texts_total") == abandoned + 500
    assert metric(server, "inbedder_requests_total", status="disconnected") >= 50
    assert not records.at_least(logging.ERROR), [r.getMessage() for r in records.at_least(logging.ERROR)]


def test_a_client_that_leaves_mid_body_is_logged_at_debug_and_counted_as_disconnected(
    server: str, records: Records
) -> None:
    before_500 = metric(server, "inbedder_requests_total", status="500")
    before = metric(server, "inbedder_requests_total", endpoint="/v1/embeddings", status="disconnected")
    with socket.create_connection(address(server)) as sock:
        sock.sendall(raw_request(server, b'{"model": "topic", "input": ["half', length=1000))
        time.sleep(0.2)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (
        metric(server, "inbedder_requests_total", endpoint="/v1/embeddings", status="disconnected") == before
    ):
        time.sleep(0.1)
    assert (
        metric(server, "inbedder_requests_total", endpoint="/v1/embeddings", status="disconnected")
        == before + 1
    )
    assert metric(server, "inbedder_requests_total", status="500") == before_500
    assert not records.at_least(logging.WARNING), [r.getMessage() for r in records.at_least(logging.WARNING)]
    assert any("disconnected" in r.getMessage() for r in records.records if r.levelno == logging.DEBUG)


# --------------------------------------------------------------------------- 5: slow clients


def test_slow_and_idle_connections_are_closed_and_connections_are_bounded(server_engine: InBedder) -> None:
    limits = config(header_timeout_s=1, body_timeout_s=1, keep_alive_s=1, max_connections=3)
    with serve_in_background(limits, server_engine) as running:
        url = running.url
        idle = socket.create_connection(address(url))
        assert read_until_closed(idle, 10)[1] < 4, "a connection that sends nothing is closed"
        slow_head = socket.create_connection(address(url))
        slow_head.sendall(b"POST /v1/embeddings HTTP/1.1\r\n")
        started = time.monotonic()
        with pytest.raises(OSError):  # closed under the slow writer: a reset or a broken pipe
            for byte in b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                slow_head.sendall(bytes([byte]))
                time.sleep(0.1)
                assert time.monotonic() - started < 6, "a head sent a byte at a time is cut off"
        slow_body = socket.create_connection(address(url))
        slow_body.sendall(raw_request(url, b'{"model": "topic", ', length=200))
        answer, seconds = read_until_closed(slow_body, 10)
        assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 1 s" in answer and seconds < 4
        with socket.create_connection(address(url)) as kept:  # keep-alive ends after an answer
            kept.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer, seconds = read_until_closed(kept, 10)
            assert answer.startswith(b"HTTP/1.1 200") and seconds < 4
        # Three connections are open: the fourth is refused at once.
        held = [socket.create_connection(address(url)) for _ in range(3)]
        time.sleep(0.2)
        assert httpx.get(f"{url}/health").status_code == 503
        for sock in held:
            sock.close()
        time.sleep(0.3)
        assert httpx.get(f"{url}/health").status_code == 200
        for sock in (idle, slow_head, slow_body):
            sock.close()


# --------------------------------------------------------------------------- 7: cross-site requests


def test_a_text_plain_post_is_refused_and_nothing_is_embedded(server: str, open_server: str) -> None:
    for url in (server, open_server):
        before = embedded(url) if url == server else None
        body = json.dumps({"model": "topic", "input": ["from another site"]})
        headers = {"Content-Type": "text/plain", "Authorization": f"Bearer {KEY}"}
        for path in ("/v1/embeddings", "/embed"):
            response = httpx.post(f"{url}{path}", content=body, headers=headers)
            assert response.status_code == 415 and "application/json" in response.text
        if before is not None:
            assert embedded(url) == before
    ok = httpx.post(
        f"{open_server}/v1/embeddings",
        content=json.dumps({"model": "topic", "input": ["x"]}),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 200


def test_a_key_less_server_answers_only_its_own_host_names(open_server: str, server: str) -> None:
    port = address(open_server)[1]
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
        response = httpx.get(f"{open_server}/info", headers={"Host": host})
        assert response.status_code == 400 and "Host header" in message(response), host
        assert (
            httpx.post(
                f"{open_server}/v1/embeddings",
                json={"model": "topic", "input": ["x"]},
                headers={"Host": host},
            ).json()["error"]["code"]
            == "host_not_allowed"
        )
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "[::1]", "10.0.0.7:80", "embed.internal:8080"):
        assert httpx.get(f"{open_server}/info", headers={"Host": host}).status_code == 200, host
    # With a key the key is the guard, so any name may reach it (behind a proxy, say).
    assert httpx.get(f"{server}/info", headers={**AUTH, "Host": "embeddings.example.org"}).status_code == 200


# --------------------------------------------------------------------------- 8: the key's variable


def test_the_key_variable_is_stripped_and_an_empty_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from inbedder_integrations.serving import read_api_key

    monkeypatch.setenv("INBEDDER_API_KEY", " secret-key\n")
    assert read_api_key(None) == "secret-key"
    for empty in ("", "  \n"):
        monkeypatch.setenv("INBEDDER_API_KEY", empty)
        with pytest.raises(ValueError, match="INBEDDER_API_KEY is set but empty"):
            read_api_key(None)
    monkeypatch.delenv("INBEDDER_API_KEY")
    assert read_api_key(None) is None


# --------------------------------------------------------------------------- 9, 10: names


@pytest.mark.parametrize("prompt_name", ["", 0, False, [], {}])
def test_a_tei_prompt_name_that_is_not_served_is_refused(server: str, prompt_name: Any) -> None:
    before = embedded(server)
    response = httpx.post(f"{server}/embed", json={"inputs": ["x"], "prompt_name": prompt_name}, headers=AUTH)
    assert response.status_code in (404, 422), response.text
    assert "prompt_name" in message(response) or "not served" in message(response)
    assert embedded(server) == before


def test_an_openai_response_always_names_its_model(server: str, server_engine: InBedder) -> None:
    body = {"input": ["x"], "instruction": "Which city is named?"}
    response = httpx.post(f"{server}/v1/embeddings", json=body, headers=AUTH)
    assert response.status_code == 200 and response.json()["model"] == server_engine.model_name
    named = httpx.post(f"{server}/v1/embeddings", json={**body, "model": "topic"}, headers=AUTH)
    assert named.json()["model"] == "topic"


# --------------------------------------------------------------------------- 11: bugs


class _Broken:
    """The real engine, but its forward pass and its ``dim`` raise: a bug in the engine."""

    def __init__(self, engine: InBedder) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def embed_encoded(self, *args: object, **kwargs: object) -> Any:
        raise ZeroDivisionError("a bug in the forward pass")

    @property
    def dim(self) -> int:
        raise KeyError("a bug in a route")


def test_a_bug_answers_a_json_500_in_each_api_and_is_logged_once_with_its_traceback(
    server_engine: InBedder, records: Records
) -> None:
    with serve_in_background(config(), _Broken(server_engine)) as running:  # type: ignore[arg-type]
        url = running.url
        with httpx.Client(headers=AUTH, timeout=60) as client:
            openai = client.post(f"{url}/v1/embeddings", json={"model": "topic", "input": ["x"]})
            tei = client.post(f"{url}/embed", json={"inputs": ["y"]})
            route = client.post(
                f"{url}/v1/embeddings", json={"model": "topic", "input": ["x"], "dimensions": 3}
            )
            assert client.get(f"{url}/health").status_code == 200, "the connection serves on"
    assert openai.status_code == 500 and openai.json()["error"]["type"] == "server_error"
    assert tei.status_code == 500 and tei.json()["error_type"] == "Backend"
    assert route.status_code == 500 and route.json()["error"]["type"] == "server_error"
    errors = records.at_least(logging.ERROR)
    causes = [record.exc_info[1] for record in errors if record.exc_info]
    assert len(errors) == 3 and len(causes) == 3, [r.getMessage() for r in errors]
    assert sum(isinstance(cause, ZeroDivisionError) for cause in causes) == 2
    assert sum(isinstance(cause, KeyError) for cause in causes) == 1
    assert not [r for r in records.records if r.levelno == logging.WARNING and "failed" in r.getMessage()]


def test_the_server_vectors_are_unchanged_by_the_guard(server: str, engine: InBedder) -> None:
    """What the guard lets through is embedded exactly as before."""
    response = httpx.post(f"{server}/v1/embeddings", json={"model": "mood", "input": TEXTS}, headers=AUTH)
    vectors = np.asarray([item["embedding"] for item in response.json()["data"]], dtype=np.float32)
    assert np.abs(vectors - engine.embed(TEXTS, MOOD)).max() <= 1e-5
