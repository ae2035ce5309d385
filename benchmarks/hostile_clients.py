"""docs/reliability.md's hostile-client table, written to docs/hostile_clients.json.

Starts real servers on 127.0.0.1 (the default model, fp32, no cache; one with a key,
one without, one whose engine raises) and sends each kind of hostile or careless
request as such a client would, raw sockets where a polite library would not.  For
each kind: how many were sent, the answers (status codes, or what the connection
did), the slowest answer, and how many of their texts reached the model.

    python benchmarks/hostile_clients.py [--output docs/hostile_clients.json]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import _cpu_name  # noqa: E402

from inbedder_integrations import InBedder  # noqa: E402
from inbedder_integrations.engine.loading import cpu_has_native_bf16  # noqa: E402
from inbedder_integrations.serving import ServeConfig, ServedInstruction, serve_in_background  # noqa: E402

KEY = "hostile-benchmark-key"
AUTH = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
TIMEOUT_S = 1.0


def config(**changes: Any) -> ServeConfig:
    settings: dict[str, Any] = {
        "port": 0, "api_key": KEY, "cache": False, "header_timeout_s": TIMEOUT_S,
        "body_timeout_s": TIMEOUT_S, "keep_alive_s": TIMEOUT_S, "max_connections": 32,
    }  # fmt: skip
    served = (
        ServedInstruction("topic", "What is the topic?"),
        ServedInstruction("mood", "How does the writer feel?"),
    )
    return ServeConfig(served, **{**settings, **changes})


class Server:
    """A running server's address and its own count of texts that reached the model."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)

    def embedded(self) -> float:
        text = httpx.get(f"{self.url}/metrics", headers=AUTH).text
        return sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("inbedder_batch_texts_sum")
        )

    def raw(
        self, body: bytes, *, path: str = "/v1/embeddings", length: int | None = None, key: str = KEY
    ) -> bytes:
        size = len(body) if length is None else length
        return (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key}\r\nContent-Length: {size}\r\n\r\n"
        ).encode() + body

    def connect(self) -> socket.socket:
        return socket.create_connection((self.host, self.port))


def status_of(answer: bytes) -> str:
    return answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "closed"


def until_closed(sock: socket.socket, timeout: float = 30) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    return data


def measure(server: Server, what: str, count: int, send: Callable[[], str]) -> dict[str, Any]:
    """Send ``count`` of one kind; each ``send`` returns its outcome (a status, or a word)."""
    before, slowest, outcomes = server.embedded(), 0.0, Counter[str]()
    for _ in range(count):
        started = time.perf_counter()
        outcomes[send()] += 1
        slowest = max(slowest, time.perf_counter() - started)
    time.sleep(0.5)  # abandoned work, if any, would have reached the model by now
    return {
        "what": what, "count": count, "outcomes": dict(sorted(outcomes.items())),
        "slowest s": round(slowest, 3), "texts embedded": int(server.embedded() - before),
    }  # fmt: skip


def post(server: Server, path: str, body: bytes, headers: dict[str, str] = AUTH) -> str:
    """The status, and whether the server closed the connection after it (a pooled
    client's next request would then fail)."""
    response = httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=60)
    closed = response.headers.get("connection", "").lower() == "close"
    return f"{response.status_code}" + (", connection closed" if closed else "")


def leave_at_once(server: Server, texts: int) -> str:
    with server.connect() as sock:
        sock.sendall(
            server.raw(json.dumps({"model": "mood", "input": [f"gone {i}" for i in range(texts)]}).encode())
        )
    return "left"


def leave_while_queued(server: Server, clients: int) -> list[dict[str, Any]]:
    """``clients`` requests of 10 texts each wait behind a long request, then leave."""
    before = server.embedded()
    long_request = threading.Thread(
        target=httpx.post,
        args=(f"{server.url}/v1/embeddings",),
        kwargs={
            "json": {"model": "topic", "input": [f"long {i}" for i in range(96)]},
            "headers": AUTH,
            "timeout": 300,
        },
    )
    long_request.start()
    time.sleep(0.3)
    sockets = [server.connect() for _ in range(clients)]
    for index, sock in enumerate(sockets):
        sock.sendall(
            server.raw(
                json.dumps({"model": "mood", "input": [f"queued {index} {i}" for i in range(10)]}).encode()
            )
        )
    time.sleep(0.3)
    for sock in sockets:
        sock.close()
    long_request.join(300)
    time.sleep(0.5)
    embedded = int(server.embedded() - before) - 96
    return [{
        "what": "sent 10 texts, waited behind a 96-text request, disconnected", "count": clients,
        "outcomes": {"left": clients}, "slowest s": None, "texts embedded": embedded,
    }]  # fmt: skip


def slow(server: Server, kind: str) -> str:
    sock = server.connect()
    started = time.perf_counter()
    try:
        if kind == "head":
            sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\n")
            for byte in b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 200:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        elif kind == "body":
            sock.sendall(server.raw(b'{"model": "topic", ', length=200))
        answer = until_closed(sock)
    except OSError:
        answer = b""
    finally:
        sock.close()
    return f"{status_of(answer)} after {time.perf_counter() - started:.0f} s"


def hostile_rows(keyed: Server, open_server: Server, limited: Server) -> list[dict[str, Any]]:
    nested = b'{"input": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    rows = [
        measure(
            keyed,
            "POST /health, no key, 4 MB body promised",
            20,
            lambda: status_of(
                _first_bytes(keyed, keyed.raw(b"", path="/health", length=4_000_000, key="wrong"))
            ),
        ),
        measure(
            keyed,
            "POST to a GET route (/health, /info, /metrics, /v1/models) with the key",
            20,
            lambda: post(keyed, "/info", b"{}"),
        ),
        measure(keyed, "body nested 5,000 levels deep", 10, lambda: post(keyed, "/v1/embeddings", nested)),
        measure(
            keyed,
            "body nested 100,000 levels deep",
            10,
            lambda: post(keyed, "/embed", b"[" * 100_000 + b"]" * 100_000),
        ),
        measure(
            keyed,
            "an integer of 5,000 digits",
            10,
            lambda: post(
                keyed,
                "/v1/embeddings",
                b'{"model": "topic", "input": "x", "dimensions": ' + b"9" * 5_000 + b"}",
            ),
        ),
        measure(keyed, 'TEI {"inputs": []}', 10, lambda: post(keyed, "/embed", b'{"inputs": []}')),
        measure(
            keyed,
            'TEI prompt_name "", 0, false or []',
            20,
            _cycle(
                lambda name: post(
                    keyed, "/embed", json.dumps({"inputs": ["x"], "prompt_name": name}).encode()
                ),
                ["", 0, False, []],
            ),
        ),
        measure(
            keyed,
            "a route's path and a newline (POST /%0A, /embed%0A, /topic%0A, /v1/embeddings%0A)",
            20,
            _cycle(
                lambda path: post(keyed, path, b'{"model": "topic", "input": "x", "inputs": "x"}'),
                ["/%0A", "/embed%0A", "/topic%0A", "/v1/embeddings%0A"],
            ),
        ),
        measure(
            keyed,
            "Content-Type: text/plain (a cross-site form post)",
            20,
            lambda: post(
                keyed,
                "/v1/embeddings",
                b'{"model": "topic", "input": ["x"]}',
                {"Authorization": f"Bearer {KEY}", "Content-Type": "text/plain"},
            ),
        ),
        measure(
            open_server,
            "key-less server, foreign Host (DNS rebinding)",
            20,
            lambda: str(httpx.get(f"{open_server.url}/info", headers={"Host": "evil.example"}).status_code),
        ),
        measure(keyed, "sent 10 texts and disconnected at once", 20, lambda: leave_at_once(keyed, 10)),
        *leave_while_queued(keyed, 30),
        measure(keyed, "disconnected mid-body", 10, lambda: _mid_body(keyed)),
        measure(limited, "connected and sent nothing", 5, lambda: slow(limited, "idle")),
        measure(limited, "sent its headers a byte every 0.1 s", 5, lambda: slow(limited, "head")),
        measure(limited, "sent half a body and stalled", 5, lambda: slow(limited, "body")),
    ]
    return rows


def _first_bytes(server: Server, request: bytes) -> bytes:
    with server.connect() as sock:
        sock.sendall(request)
        sock.settimeout(10)
        return sock.recv(65536)


def _mid_body(server: Server) -> str:
    with server.connect() as sock:
        sock.sendall(server.raw(b'{"model": "topic", "input": ["half', length=1000))
        time.sleep(0.05)
    return "left"


def _cycle(send: Callable[[Any], str], values: list[Any]) -> Callable[[], str]:
    position = [0]

    def next_one() -> str:
        value = values[position[0] % len(values)]
        position[0] += 1
        return send(value)

    return next_one


def connection_limit_row(limited: Server) -> dict[str, Any]:
    held = [limited.connect() for _ in range(32)]
    time.sleep(0.2)
    try:
        outcomes = Counter(str(httpx.get(f"{limited.url}/health").status_code) for _ in range(10))
    finally:
        for sock in held:
            sock.close()
    return {
        "what": "a request while 32 connections (max_connections) are open", "count": 10,
        "outcomes": dict(outcomes), "slowest s": None, "texts embedded": 0,
    }  # fmt: skip


class _Broken:
    """The real engine whose forward pass raises: a bug, for the JSON-500 row."""

    def __init__(self, engine: InBedder) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def embed_encoded(self, *args: object, **kwargs: object) -> Any:
        """What the server's batcher calls (as tests/serving/test_serve_hostile.py's _Broken does)."""
        raise ZeroDivisionError("a bug in the forward pass")


def bug_row(engine: InBedder) -> dict[str, Any]:
    with serve_in_background(config(), _Broken(engine)) as running:  # type: ignore[arg-type]
        server = Server(running.url)
        return measure(
            server,
            "a bug in the engine (its forward pass raises)",
            10,
            lambda: post(server, "/v1/embeddings", b'{"model": "topic", "input": ["x"]}'),
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", default=str(ROOT / "docs" / "hostile_clients.json"))
    args = parser.parse_args()
    engine = InBedder.from_pretrained("default", dtype="float32", cache=False)
    with (
        serve_in_background(config(header_timeout_s=10, body_timeout_s=30), engine) as keyed,
        serve_in_background(config(api_key=None), engine) as open_server,
        serve_in_background(config(), engine) as limited,
    ):
        rows = hostile_rows(Server(keyed.url), Server(open_server.url), Server(limited.url))
        rows.append(connection_limit_row(Server(limited.url)))
    rows.append(bug_row(engine))
    result = {
        "command": "python benchmarks/hostile_clients.py",
        "cpu": _cpu_name(),
        "native bf16": cpu_has_native_bf16(),
        "torch threads": torch.get_num_threads(),
        "timeouts s": {"header": TIMEOUT_S, "body": TIMEOUT_S, "keep-alive": TIMEOUT_S},
        "rows": rows,
    }
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for row in rows:
        print(f"{row['count']:>3} x {row['what']}: {row['outcomes']}, embedded {row['texts embedded']}")


if __name__ == "__main__":
    main()
