"""``PosthogInstrumentor().instrument(traces=...)`` and ``POSTHOG_OTEL_TRACES``."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

import posthog_otel as posthog
from posthog_otel import PosthogInstrumentor
from posthog_otel.sink import SinkServer


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_spans_of_the_given_provider_are_exported_and_uninstrument_stops_it(
    how: str,
    instrumentor: PosthogInstrumentor,
    posthog_sink: SinkServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = TracerProvider()
    options: dict[str, object] = {"traces": {"flush_interval": 0.05}} if how == "argument" else {}
    if how == "environment":
        monkeypatch.setenv("POSTHOG_OTEL_TRACES", "true")
    instrumentor.instrument(
        api_key="phc_inst_traces",
        host=posthog_sink.url,
        tracer_provider=provider,
        instrument_libraries=False,
        **options,
    )
    client = posthog.get_client()
    assert client.traces_enabled
    tracer = provider.get_tracer("t")
    with posthog.new_context():
        posthog.identify_context("inst-user")
        posthog.set_context_session("inst-session")
        with (
            tracer.start_as_current_span("GET /x", kind=SpanKind.SERVER),
            posthog.start_span("inner") as inner,
        ):
            assert inner.is_recording()
    assert posthog.flush(10)
    rows = {r["event"]: r for r in posthog_sink.wait_for(2, kind="otlp_span", timeout=10)}
    for row in rows.values():
        attributes = row["properties"]["attributes"]
        # both processors' stamps: PostHog's ingestion names and our posthog.* attributes
        assert attributes["posthogDistinctId"] == "inst-user"
        assert attributes["sessionId"] == "inst-session"
        assert attributes["posthog.distinct_id"] == "inst-user"
    assert rows["inner"]["properties"]["parent_span_id"] == rows["GET /x"]["span_id"]
    instrumentor.uninstrument()
    assert not client.traces_enabled
    with tracer.start_as_current_span("after uninstrument"):
        pass
    provider.force_flush()
    assert posthog_sink.events(kind="otlp_span", event="after uninstrument") == []
    provider.shutdown()
