"""A client that sends nothing (no API key) must not mark exceptions as captured: a service
that only stamps spans for a Collector relies on the OTLP bridge to report them."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_otel import Client, PosthogSpanProcessor
from posthog_otel.spans import record_exception as span_exceptions


@pytest.mark.parametrize("api_key", [None, "phc_test"])
def test_marking_follows_whether_the_client_sends(
    api_key: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("POSTHOG_API_KEY", "POSTHOG_PROJECT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    client = Client(api_key, host="http://127.0.0.1:9", max_retries=0, shutdown_timeout=1)
    assert client.disabled is (api_key is None)
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(client, capture_spans="none"))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    try:
        with provider.get_tracer("t").start_as_current_span("work") as span:
            try:
                raise RuntimeError("boom")
            except RuntimeError as exc:
                span.record_exception(exc)
    finally:
        span_exceptions.unhook_record_exception()
        provider.shutdown()
        client.shutdown()
    ((event,),) = [s.events for s in spans.get_finished_spans()]
    marked = (event.attributes or {}).get("posthog.exception_captured")
    assert marked is (True if api_key else None)
