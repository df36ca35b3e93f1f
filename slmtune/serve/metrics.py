"""Prometheus metrics of the server, in a registry of its own (text format at GET /metrics)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128)
# Label values come from this fixed set: a client's arbitrary paths must not each make a series.
ROUTES = ("/v1/chat/completions", "/v1/extract", "/v1/models", "/health", "/metrics")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "slmtune_requests", "HTTP requests by path and status", ["path", "status"], registry=r
        )
        self.errors = Counter("slmtune_errors", "HTTP responses with status >= 400", registry=r)
        self.latency = Histogram(
            "slmtune_request_seconds", "request latency", ["path"], buckets=LATENCY_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.tokens = Counter("slmtune_generated_tokens", "tokens generated", registry=r)
        self.tokens_per_second = Gauge(
            "slmtune_tokens_per_second", "generated tokens/s of the last decoding step", registry=r
        )
        self.batch_size = Histogram(
            "slmtune_batch_size", "requests in flight per decoding step", buckets=BATCH_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.queue_depth = Gauge("slmtune_queue_depth", "requests waiting", registry=r)

    def request(self, path: str, status: int, seconds: float) -> None:
        known = path if path in ROUTES else "other"
        self.requests.labels(known, str(status)).inc()
        self.latency.labels(known).observe(seconds)
        if status >= 400:
            self.errors.inc()

    def step(self, rows: int, seconds: float) -> None:
        """One decoding step: `rows` requests each got a token."""
        self.batch_size.observe(rows)
        self.tokens.inc(rows)
        self.tokens_per_second.set(rows / max(seconds, 1e-9))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
