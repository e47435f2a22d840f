"""Spans to PostHog's ``/i/v1/traces``: identity, resource, auth, sampling, coexistence, faults.

Real OpenTelemetry SDK, real OTLP exporter, a real loopback receiver (``OtlpReceiver``, the sink)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Decision, Sampler, SamplingResult

import posthog_otel as posthog
from posthog_otel import Client
from posthog_otel.sink import SinkServer
from tests.support.otlp_receiver import Answer, OtlpReceiver

KEY = "phc_traces_test"


class RecordOnly(Sampler):
    """Records every span but samples none (OpenTelemetry's RECORD_ONLY decision)."""

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "RecordOnly"


@pytest.fixture
def server() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def traced_client(
    host: str, provider: TracerProvider, *, shutdown_timeout: float = 3.0, **traces: Any
) -> Client:
    client = Client(KEY, host=host, timeout=2, shutdown_timeout=shutdown_timeout)
    assert client.enable_traces({"flush_interval": 0.05, **traces}, tracer_provider=provider)
    return client


def test_spans_carry_identity_resource_and_reach_the_sink(posthog_sink: SinkServer) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    client = traced_client(posthog_sink.url, provider)
    tracer = provider.get_tracer("app")
    with posthog.new_context():
        posthog.identify_context("ada")
        posthog.set_context_session("session-ada")
        with tracer.start_as_current_span("GET /cart"), tracer.start_as_current_span("db"):
            pass
    with tracer.start_as_current_span("no context"):
        pass
    assert client.flush(5)
    spans = {s["event"]: s for s in posthog_sink.wait_for(3, kind="otlp_span")}
    for name in ("GET /cart", "db"):
        assert spans[name]["distinct_id"] == "ada"
        assert spans[name]["session_id"] == "session-ada"
        attributes = spans[name]["properties"]["attributes"]
        assert attributes["posthogDistinctId"] == "ada"
        assert attributes["sessionId"] == "session-ada"
        assert spans[name]["properties"]["resource"]["service.name"] == "shop"
    assert "posthogDistinctId" not in spans["no context"]["properties"]["attributes"]
    stats = client.stats()["traces"]
    assert (stats["spans"], stats["exported"], stats["dropped_total"]) == (3, 3, 0)
    client.shutdown(2)
    provider.shutdown()


def test_only_our_headers_go_to_posthog(
    server: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Meant for the app's own backend: must never reach PostHog.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-team=secret")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "authorization=Basic other")
    provider = TracerProvider()
    client = traced_client(server.url, provider)
    with provider.get_tracer("app").start_as_current_span("one"):
        pass
    server.wait_for_spans(1)
    headers = {k.lower(): v for k, v in server.requests[0].headers.items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "application/x-protobuf"
    assert "x-honeycomb-team" not in headers
    assert "secret" not in str(headers)
    client.shutdown(2)
    provider.shutdown()


def test_a_users_own_exporter_still_receives_every_span(server: OtlpReceiver) -> None:
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with OtlpReceiver() as other_backend:
        provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(endpoint=other_backend.url + "/v1/traces"),
                schedule_delay_millis=50,
            )
        )
        client = traced_client(server.url, provider)
        tracer = provider.get_tracer("app")
        with posthog.new_context():
            posthog.identify_context("grace")
            for index in range(5):
                with tracer.start_as_current_span(f"span {index}"):
                    pass
        ours = server.wait_for_spans(5)
        theirs = other_backend.wait_for_spans(5)
        assert sorted(s.name for s in ours) == sorted(s.name for s in theirs)
        assert len(memory.get_finished_spans()) == 5
        # identity is on the span itself: every backend of this provider receives it
        assert all(any(a.key == "posthogDistinctId" for a in span.attributes) for span in theirs)
        client.shutdown(2)
        provider.shutdown()


def test_unsampled_spans_are_not_exported_events_still_are(posthog_sink: SinkServer) -> None:
    for sampler in (ALWAYS_OFF, RecordOnly()):
        posthog_sink.clear()
        provider = TracerProvider(sampler=sampler)
        client = traced_client(posthog_sink.url, provider)
        with posthog.new_context():
            posthog.identify_context("ada")
            with provider.get_tracer("app").start_as_current_span("request"):
                client.capture("checkout_started")
        assert client.flush(5)
        posthog_sink.wait_for(1, kind="event")
        time.sleep(0.2)
        assert posthog_sink.events(kind="otlp_span") == []
        stats = client.stats()["traces"]
        assert stats["exported"] == 0 and stats["dropped_total"] == 0
        if isinstance(sampler, RecordOnly):
            assert stats["unsampled"] == 1
        client.shutdown(2)
        provider.shutdown()


def test_413_splits_the_batch_and_a_lone_oversized_span_is_counted() -> None:
    with OtlpReceiver(max_spans=3) as server:
        provider = TracerProvider()
        client = traced_client(server.url, provider, flush_interval=5)
        tracer = provider.get_tracer("app")
        for index in range(10):
            with tracer.start_as_current_span(f"s{index}"):
                pass
        assert client.flush(10)
        assert sorted(s.name for s in server.accepted_spans()) == sorted(f"s{i}" for i in range(10))
        assert 413 in [r.status for r in server.requests]
        stats = client.stats()["traces"]
        assert stats["exported"] == 10 and stats["dropped_total"] == 0
        server.max_spans = 0  # every span is too large now
        with tracer.start_as_current_span("huge"):
            pass
        assert client.flush(10)
        assert client.stats()["traces"]["dropped"] == {"too_large": 1}
        client.shutdown(2)
        provider.shutdown()


def test_429_waits_for_retry_after_then_delivers_once(server: OtlpReceiver) -> None:
    server.script(Answer(429, {"Retry-After": "1"}))
    provider = TracerProvider()
    client = traced_client(server.url, provider, max_export_batch_size=1)
    with provider.get_tracer("app").start_as_current_span("once"):
        pass
    spans = server.wait_for_spans(1, timeout=10)
    assert [s.name for s in spans] == ["once"]
    first, second = server.requests[:2]
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95
    assert client.flush(5)  # the answer reached the exporter
    stats = client.stats()["traces"]
    assert stats["requests"] == 2 and stats["exported"] == 1
    client.shutdown(2)
    provider.shutdown()


def test_a_rejected_batch_is_dropped_and_counted(server: OtlpReceiver) -> None:
    server.script(Answer(400))
    provider = TracerProvider()
    client = traced_client(server.url, provider)
    with provider.get_tracer("app").start_as_current_span("bad"):
        pass
    assert client.flush(5)
    stats = client.stats()["traces"]
    assert stats["dropped"] == {"rejected": 1}
    assert "HTTP 400" in stats["last_error"]
    client.shutdown(2)
    provider.shutdown()
