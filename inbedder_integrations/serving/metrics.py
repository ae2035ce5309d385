"""Prometheus metrics of one server, in a registry of its own (two apps in one process,
as in tests, never share counters)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "ServerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServerMetrics:
    """Requests, texts, batch sizes, queue depth and latency, as ``GET /metrics`` shows them."""

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "inbedder_requests", "HTTP requests by endpoint and status code",
            ["endpoint", "status"], registry=self.registry,
        )  # fmt: skip
        self.texts = Counter(
            "inbedder_texts", "Texts embedded, by served model name", ["model"], registry=self.registry
        )
        self.batch_texts = Histogram(
            "inbedder_batch_texts", "Texts per batch embedded together", buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.batch_requests = Histogram(
            "inbedder_batch_requests", "Requests per batch embedded together", buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "inbedder_request_seconds", "Request latency by endpoint", ["endpoint"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.abandoned = Counter(
            "inbedder_abandoned_texts", "Texts never embedded because their client disconnected first",
            registry=self.registry,
        )  # fmt: skip
        queue = Gauge("inbedder_queue_texts", "Texts waiting for a batch", registry=self.registry)
        queue.set_function(queue_depth)

    def on_batch(self, requests: int, texts: int) -> None:
        self.batch_requests.observe(requests)
        self.batch_texts.observe(texts)

    def observe(self, endpoint: str, status: int | str, seconds: float) -> None:
        """One request's outcome: its status code, or ``disconnected`` (the client left first)."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
