"""A local HTTP server that plays ``inbedder serve`` badly on purpose and records what reaches it.

It answers ``/v1/models`` and ``/info`` as the real server does and ``/embed`` by a plan the
test sets: right rows, or the wrong width, count, values or size, slowly, or busy.  Every
request is recorded (path, headers, body), so a test can show what a client sent and to whom.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

DIM = 8
INSTRUCTION = "What is the topic of this text?"
FINGERPRINT = "fake-model@0000000000000000"

#: An /embed plan: given the texts sent, the status, headers and body chunks to answer with.
Plan = Callable[[list[str]], tuple[int, dict[str, str], Iterator[bytes]]]


def unit_rows(count: int, dim: int = DIM) -> list[list[float]]:
    rows = np.random.default_rng(count).normal(size=(count, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).tolist()


def answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Plan:
    body = json.dumps(payload).encode()
    return lambda texts: (status, {"Content-Type": "application/json", **(headers or {})}, iter([body]))


def rows_plan(make: Callable[[int], Any]) -> Plan:
    """Answer each request with ``make(number of texts sent)`` as JSON."""
    return lambda texts: answer(make(len(texts)))(texts)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeServer:
    plan: Plan = field(default_factory=lambda: rows_plan(unit_rows))
    requests: list[Request] = field(default_factory=list)
    sent_bytes: int = 0
    url: str = ""

    def describe(self, path: str) -> Any:
        if path == "/v1/models":
            entry = {"id": "topic", "object": "model", "instruction": INSTRUCTION}
            entry.update({"fingerprint": FINGERPRINT, "dim": DIM})
            return {"object": "list", "data": [entry]}
        return {"model_id": "fake-model", "model_dtype": "float32", "device": "cpu"}

    def serve(self) -> Iterator[FakeServer]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _record(self) -> bytes:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fake.requests.append(Request(self.command, self.path, dict(self.headers), body))
                return body

            def _send(self, status: int, headers: dict[str, str], chunks: Iterator[bytes]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for chunk in chunks:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        fake.sent_bytes += len(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                self._record()
                self._send(*answer(fake.describe(self.path))([]))

            def do_POST(self) -> None:
                texts = json.loads(self._record() or b"{}").get("inputs", [])
                self._send(*fake.plan(texts))

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def trickle(delay: float) -> Plan:
    """Rows that arrive one byte every ``delay`` seconds: each read is quick, the whole never ends."""

    def plan(texts: list[str]) -> tuple[int, dict[str, str], Iterator[bytes]]:
        body = json.dumps(unit_rows(len(texts))).encode()

        def chunks() -> Iterator[bytes]:
            for byte in body:
                time.sleep(delay)
                yield bytes([byte])

        return 200, {"Content-Type": "application/json", "Content-Length": str(len(body))}, chunks()

    return plan


def endless(chunk: bytes = b"[" + b"0.0," * 16384) -> Plan:
    """A body that never stops (a 100 MB answer for three texts, and more)."""

    def chunks() -> Iterator[bytes]:
        for _ in range(100_000):
            yield chunk

    return lambda texts: (200, {"Content-Type": "application/json"}, chunks())
