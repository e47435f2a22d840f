"""Traces export under a faulty PostHog: the app never waits, shutdown keeps its budget, every
span is exported or counted as dropped.

PostHog down (nothing listens on the port), slow (each answer stalls past the client's
timeout), and a queue bounded in bytes filling up while PostHog is slow.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from posthog_otel import Client
from tests.support.otlp_receiver import Answer, OtlpReceiver

KEY = "phc_traces_faults"


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _client(host: str, provider: TracerProvider, **traces: Any) -> Client:
    client = Client(KEY, host=host, timeout=1, shutdown_timeout=1.5)
    assert client.enable_traces({"flush_interval": 0.05, **traces}, tracer_provider=provider)
    return client


def _spans(provider: TracerProvider, count: int, payload: str = "") -> float:
    """End ``count`` spans; the slowest ``span.end()`` in seconds."""
    tracer = provider.get_tracer("app")
    slowest = 0.0
    for index in range(count):
        span = tracer.start_span(f"s{index}", attributes={"payload": payload})
        start = time.perf_counter()
        span.end()
        slowest = max(slowest, time.perf_counter() - start)
    return slowest


def _accounted(stats: dict[str, Any]) -> int:
    return int(stats["exported"] + stats["dropped_total"] + stats["queued"])


def test_posthog_down_never_blocks_and_drops_are_counted() -> None:
    provider = TracerProvider()
    client = _client(_closed_port(), provider)
    slowest = _spans(provider, 200)
    assert slowest < 0.25  # never a network wait (timeouts are 1 s); loose for a loaded CI box
    start = time.monotonic()
    client.shutdown()
    assert time.monotonic() - start < 1.5 + 0.5
    stats = client.stats()["traces"]
    assert stats["spans"] == 200 and stats["exported"] == 0
    assert stats["dropped_total"] == 200, stats
    assert set(stats["dropped"]) <= {"failed", "shutdown"}
    provider.shutdown()


def test_slow_posthog_shutdown_keeps_the_events_budget() -> None:
    with OtlpReceiver() as server:
        server.script(*[Answer(stall=3.0) for _ in range(20)])
        provider = TracerProvider()
        client = _client(server.url, provider, max_export_batch_size=10)
        slowest = _spans(provider, 100)
        assert slowest < 0.25  # never a network wait (timeouts are 1 s); loose for a loaded CI box
        client.capture("still_sent", distinct_id="u1")
        start = time.monotonic()
        client.shutdown()  # events and spans share shutdown_timeout (1.5 s)
        assert time.monotonic() - start < 1.5 + 0.5
        stats = client.stats()["traces"]
        assert stats["exported"] == 0
        # spans in flight when the budget ran out are the exporter's to finish or drop
        assert stats["dropped_total"] + stats["queued"] == 100, stats
        provider.shutdown()


def test_the_queue_is_bounded_in_bytes_and_drops_are_counted() -> None:
    with OtlpReceiver() as server:
        server.script(Answer(stall=0.5))  # under the client's 1 s timeout: answered late
        provider = TracerProvider()
        client = _client(server.url, provider, max_queue_bytes=64 * 1024, max_export_batch_size=1)
        _spans(provider, 50, payload="x" * 8 * 1024)  # ~400 KiB offered
        stats = client.stats()["traces"]
        assert stats["dropped"].get("queue_full", 0) >= 30, stats
        assert stats["queued_bytes"] <= 64 * 1024
        assert client.flush(10)
        final = client.stats()["traces"]
        assert _accounted(final) == 50, final
        assert final["exported"] == len(server.accepted_spans())
        client.shutdown(2)
        provider.shutdown()
