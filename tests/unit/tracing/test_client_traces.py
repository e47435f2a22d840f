"""``Client(..., traces=...)``, module-level ``posthog_otel.traces`` and when tracing stays off."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as posthog
from posthog_otel import Client
from posthog_otel.sink import SinkServer
from tests.support.routing import route_to

KEY = "phc_client_traces"


@pytest.fixture
def global_provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[TracerProvider]:
    """An SDK provider as the process's global one (tests share one global: see routing)."""
    provider = TracerProvider()
    route_to(provider)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield provider
    route_to(None)
    provider.shutdown()


def test_the_traces_option_turns_export_on(
    posthog_sink: SinkServer, global_provider: TracerProvider
) -> None:
    client = Client(KEY, host=posthog_sink.url, traces={"flush_interval": 0.05})
    assert client.traces_enabled
    with client.start_span("from the client", kind="server") as span:
        assert span.is_recording()
        assert client.get_active_span() is span
    assert client.flush(5)
    (row,) = posthog_sink.wait_for(1, kind="otlp_span", event="from the client")
    assert row["properties"]["kind"] == "SERVER"
    assert client.stats()["traces"]["exported"] == 1
    assert client.shutdown(2)
    with global_provider.get_tracer("t").start_as_current_span("after shutdown"):
        pass
    assert client.stats()["traces"]["spans"] == 1  # a shut-down client exports no more
    with client.start_span("after shutdown") as late:  # and starts inert spans, as posthog-python
        assert not late.is_recording()


def test_module_level_traces_as_in_posthog_python(
    posthog_sink: SinkServer, monkeypatch: pytest.MonkeyPatch, global_provider: TracerProvider
) -> None:
    monkeypatch.setattr(posthog, "api_key", KEY)
    monkeypatch.setattr(posthog, "host", posthog_sink.url)
    monkeypatch.setattr(posthog, "traces", {"flush_interval": 0.05})
    with posthog.start_span("module span") as span:
        assert span.is_recording()
        assert posthog.get_active_span() is span
    assert posthog.flush(5)
    posthog_sink.wait_for(1, kind="otlp_span", event="module span")


@pytest.mark.parametrize(
    ("api_key", "options"),
    [
        (KEY, {"traces": None}),
        (KEY, {"traces": False}),
        (None, {"traces": True}),
        (KEY, {"traces": True, "disabled": True}),
    ],
)
def test_off_start_span_is_inert(api_key: str | None, options: dict[str, object]) -> None:
    client = Client(api_key, host="http://127.0.0.1:9", **options)
    assert not client.traces_enabled
    with client.start_span("nothing") as span:
        assert not span.is_recording()
    assert "traces" not in client.stats()
    client.shutdown(1)


def test_a_before_span_send_hook_keeps_tracing_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, "posthog.otel"):
        client = Client(KEY, host="http://127.0.0.1:9", traces={"before_span_send": dict})
    assert not client.traces_enabled
    assert "before_span_send" in caplog.text
    client.shutdown(1)
