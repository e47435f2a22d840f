"""PosthogSpanExporter under stock processors, from the environment, and at interpreter exit."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from posthog_otel import PosthogSpanExporter
from posthog_otel.testing import memory_client
from posthog_otel.testing.capture_server import CaptureServer
from tests.support.procs import ROOT


def test_exporter_reads_identity_from_attributes() -> None:
    client, events = memory_client()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(PosthogSpanExporter(client)))
    tracer = provider.get_tracer("t")
    attributes = {
        "posthogDistinctId": "native-user",
        "sessionId": "native-session",
        "posthog.tag.plan": "pro",
        "posthog.tag.items": '["a",1]',
        "http.method": "POST",
        "http.target": "/pay?x=1",
        "http.host": "api.internal:8080",
        "http.scheme": "http",
        "http.status_code": 201,
    }
    with tracer.start_as_current_span("POST /pay", kind=SpanKind.SERVER, attributes=attributes):
        pass
    (event,) = events
    assert event["distinct_id"] == "native-user"
    props = event["properties"]
    assert props["$session_id"] == "native-session"
    assert props["plan"] == "pro"
    assert props["items"] == ["a", 1]
    assert props["$current_url"] == "http://api.internal:8080/pay?x=1"
    assert props["$request_path"] == "/pay"
    assert props["$request_method"] == "POST"
    assert props["http_status_code"] == 201


def test_attribute_nested_too_deep_to_decode_stays_text() -> None:
    client, events = memory_client()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(PosthogSpanExporter(client)))
    nested = "[" * 50_000 + "]" * 50_000
    attributes = {"posthogDistinctId": "u-1", "posthog.tag.deep": nested, "payload": nested}
    with provider.get_tracer("t").start_as_current_span(
        "GET /deep", kind=SpanKind.SERVER, attributes=attributes
    ):
        pass
    (event,) = events
    assert event["properties"]["deep"] == nested
    assert event["properties"]["payload"] == nested


def test_user_id_and_session_id_semantic_conventions() -> None:
    client, events = memory_client()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(PosthogSpanExporter(client)))
    with provider.get_tracer("t").start_as_current_span(
        "consume", kind=SpanKind.CONSUMER, attributes={"user.id": "u-7", "session.id": "s-7"}
    ):
        pass
    assert events[0]["distinct_id"] == "u-7"
    assert events[0]["properties"]["$session_id"] == "s-7"


def test_exporter_is_constructible_from_the_environment(
    capture_server: CaptureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTHOG_API_KEY", "phc_env_exporter")
    monkeypatch.setenv("POSTHOG_HOST", capture_server.url)
    monkeypatch.setenv("POSTHOG_OTEL_CAPTURE_SPANS", "all")
    exporter = PosthogSpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("background-job"):
        pass
    assert provider.force_flush(5_000)
    assert [e["event"] for e in capture_server.events] == ["background-job"]
    provider.shutdown()


def test_invalid_capture_mode_from_env_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTHOG_OTEL_CAPTURE_SPANS", "most")
    with pytest.raises(ValueError, match="capture_spans"):
        PosthogSpanExporter()


def test_traces_exporter_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    (entry,) = [
        e for e in entry_points(group="opentelemetry_traces_exporter") if e.name == "posthog"
    ]
    assert entry.load() is PosthogSpanExporter


@pytest.mark.parametrize("order", ["client-first", "provider-first"])
def test_no_events_lost_at_exit_whatever_the_atexit_order(
    capture_server: CaptureServer, order: str
) -> None:
    result = subprocess.run(
        [sys.executable, "tests/support/apps/exit_order.py", order, "40"],
        cwd=ROOT,
        env={"POSTHOG_HOST": capture_server.url, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    names = sorted(e["event"] for e in capture_server.events)
    assert names == sorted(f"job-{i}" for i in range(40)), result.stderr
