"""Late identity on a started span: written like ``set_attributes``, without its re-validation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.trace import SpanKind

import posthog_otel as posthog
from posthog_otel import PosthogSpanProcessor
from posthog_otel.spans._sdk import stamp_live_span
from posthog_otel.testing import CapturedEvents


@pytest.fixture
def provider(posthog_events: CapturedEvents) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(posthog_events.client))
    yield provider
    provider.shutdown()


def test_a_server_span_started_before_the_context_gets_its_identity(
    provider: TracerProvider,
) -> None:
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as span:
        span.set_attribute("http.route", "/")
        with posthog.new_context():
            posthog.identify_context("first")
            posthog.tag("plan", ["pro", "team"])
            posthog.identify_context("second")
        attributes = dict(span.attributes or {})  # type: ignore[attr-defined]
    assert attributes["posthog.distinct_id"] == "second"
    assert attributes["posthog.tag.plan"] == ("pro", "team")
    order = list(attributes)
    assert order[0] == "http.route"
    # a replaced value moves to the end, as with set_attributes
    assert order.index("posthog.distinct_id") > order.index("posthog.tag.plan")


def test_an_ended_span_is_left_as_it_is(provider: TracerProvider) -> None:
    span = provider.get_tracer("test").start_span("done")
    span.end()
    stamp_live_span(span, {"posthog.distinct_id": "late"})
    assert "posthog.distinct_id" not in (span.attributes or {})  # type: ignore[attr-defined]


def test_attribute_limits_go_through_the_sdk(posthog_events: CapturedEvents) -> None:
    provider = TracerProvider(span_limits=SpanLimits(max_attribute_length=4, max_attributes=2))
    span = provider.get_tracer("test").start_span("limited")
    span.set_attribute("a", 1)
    stamp_live_span(span, {"posthog.distinct_id": "abcdefgh", "posthog.session_id": "s"})
    attributes = dict(span.attributes or {})  # type: ignore[attr-defined]
    span.end()
    provider.shutdown()
    assert attributes == {"posthog.distinct_id": "abcd", "posthog.session_id": "s"}
