"""PosthogSpanProcessor: stamping, caching, late identity, selection, exceptions."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import posthog_otel as posthog
from posthog_otel import PosthogSpanProcessor, capture_span
from posthog_otel.spans import record_exception as span_exceptions
from posthog_otel.testing import CapturedEvents, memory_client
from tests.support.routing import route_to


@dataclass
class Harness:
    tracer: trace.Tracer
    spans: InMemorySpanExporter
    events: CapturedEvents
    processor: PosthogSpanProcessor

    def flush(self) -> None:
        assert self.processor.force_flush(5_000)

    def finished(self, name: str) -> ReadableSpan:
        return next(s for s in self.spans.get_finished_spans() if s.name == name)


def _harness(events: CapturedEvents, **options: Any) -> Iterator[Harness]:
    """Spans of a real SDK provider into ``events`` (the installed default client's)."""
    processor = PosthogSpanProcessor(events.client, **options)
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout-api"}))
    provider.add_span_processor(processor)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    route_to(provider)  # capture_span uses the global provider
    yield Harness(provider.get_tracer("test"), exporter, events, processor)
    provider.shutdown()


@pytest.fixture
def harness(posthog_events: CapturedEvents) -> Iterator[Harness]:
    yield from _harness(posthog_events)


# -- stamping -----------------------------------------------------------------------------


def test_on_start_stamps_scope_in_one_set_of_attributes(harness: Harness) -> None:
    with posthog.new_context():
        posthog.identify_context("user-1")
        posthog.set_context_session("session-1")
        posthog.set_context_window_id("window-1")
        posthog.tag("plan", "pro")
        posthog.tag("seats", 3)
        posthog.tag("flags", ["a", "b"])
        posthog.tag("meta", {"nested": True})
        posthog.tag("maybe", None)
        with harness.tracer.start_as_current_span("work"):
            pass
    attributes = dict(harness.finished("work").attributes or {})
    assert attributes == {
        "posthog.distinct_id": "user-1",
        "posthogDistinctId": "user-1",
        "posthog.session_id": "session-1",
        "sessionId": "session-1",
        "posthog.window_id": "window-1",
        "posthog.tag.plan": "pro",
        "posthog.tag.seats": 3,
        "posthog.tag.flags": ("a", "b"),
        "posthog.tag.meta": '{"nested":true}',
        "posthog.tag.maybe": "null",
    }


def test_native_aliases_can_be_switched_off(posthog_events: CapturedEvents) -> None:
    for harness in _harness(posthog_events, native_attribute_aliases=False):
        with posthog.new_context():
            posthog.identify_context("u")
            posthog.set_context_session("s")
            with harness.tracer.start_as_current_span("work"):
                pass
        attributes = harness.finished("work").attributes or {}
        assert "posthogDistinctId" not in attributes and "sessionId" not in attributes
        assert attributes["posthog.distinct_id"] == "u"


def test_existing_attributes_are_never_overwritten(harness: Harness) -> None:
    with posthog.new_context():
        posthog.identify_context("from-scope")
        posthog.tag("plan", "pro")
        with harness.tracer.start_as_current_span(
            "work", attributes={"posthog.distinct_id": "explicit"}
        ):
            pass
    attributes = harness.finished("work").attributes or {}
    assert attributes["posthog.distinct_id"] == "explicit"
    assert attributes["posthog.tag.plan"] == "pro"


def test_stamp_dict_is_cached_per_scope_state(harness: Harness) -> None:
    with posthog.new_context() as scope:
        posthog.identify_context("u")
        first = harness.processor._attributes(scope)
        assert harness.processor._attributes(scope) is first
        posthog.tag("k", "v")
        second = harness.processor._attributes(scope)
        assert second is not first and second["posthog.tag.k"] == "v"


def test_spans_outside_any_context_are_not_stamped(harness: Harness) -> None:
    with harness.tracer.start_as_current_span("bare"):
        pass
    assert dict(harness.finished("bare").attributes or {}) == {}


def test_stamps_from_parent_context_in_other_threads_and_tasks(harness: Harness) -> None:
    async def handler(user: str) -> None:
        with posthog.new_context(fresh=True):
            posthog.identify_context(user)
            await asyncio.sleep(0)
            with harness.tracer.start_as_current_span(f"span-{user}"):
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(handler(f"u{i}") for i in range(20)))

    asyncio.run(main())
    for i in range(20):
        assert (harness.finished(f"span-u{i}").attributes or {})["posthog.distinct_id"] == f"u{i}"


# -- late identity and root events --------------------------------------------------------


def test_user_identified_inside_the_view_owns_the_request_event(harness: Harness) -> None:
    with posthog.new_context():
        posthog.set_context_session("s-1")
        with harness.tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.route", "/orders")
            with posthog.new_context():  # e.g. the view's own context
                posthog.identify_context("late-user")
                posthog.tag("order", 7)
    harness.flush()
    (event,) = harness.events.named("GET /orders")
    assert event["distinct_id"] == "late-user"
    assert event["properties"]["$session_id"] == "s-1"
    assert event["properties"]["order"] == 7
    assert event["properties"]["http_route"] == "/orders"
    root_attributes = harness.finished("GET /orders").attributes or {}
    assert root_attributes["posthog.distinct_id"] == "late-user"  # stamped late


def test_roots_mode_skips_anonymous_and_non_root_spans(harness: Harness) -> None:
    with harness.tracer.start_as_current_span("anonymous", kind=SpanKind.SERVER):
        pass
    with posthog.new_context():
        posthog.identify_context("u")
        with harness.tracer.start_as_current_span("root", kind=SpanKind.SERVER):
            with harness.tracer.start_as_current_span("child", kind=SpanKind.SERVER):
                pass
            with harness.tracer.start_as_current_span("internal"):
                pass
        with harness.tracer.start_as_current_span("internal-root"):
            pass
    harness.flush()
    assert [e["event"] for e in harness.events] == ["root"]


def test_all_mode(posthog_events: CapturedEvents) -> None:
    for harness in _harness(posthog_events, capture_spans="all"):
        with harness.tracer.start_as_current_span("a"), harness.tracer.start_as_current_span("b"):
            pass
        harness.flush()
        assert sorted(e["event"] for e in harness.events) == ["a", "b"]
        assert all(e["properties"]["$process_person_profile"] is False for e in harness.events)


def test_none_mode_keeps_only_marked_spans(posthog_events: CapturedEvents) -> None:
    for harness in _harness(posthog_events, capture_spans="none"):
        with posthog.new_context():
            posthog.identify_context("u")
            with harness.tracer.start_as_current_span("root", kind=SpanKind.SERVER):
                pass
            with capture_span("marked"):
                pass
        harness.flush()
        assert [e["event"] for e in harness.events] == ["marked"]


def test_invalid_capture_mode_is_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="capture_spans"):
        PosthogSpanProcessor(capture_spans="sometimes")


def test_capture_span_context_manager_and_decorators(harness: Harness) -> None:
    @capture_span("sync_job", queue="default")
    def job() -> int:
        return 1

    @capture_span()
    async def async_job() -> int:
        await asyncio.sleep(0)
        return 2

    with posthog.new_context():
        posthog.identify_context("worker-user")
        with capture_span("report_generated", format="pdf") as span:
            span.set_attribute("pages", 3)
        assert job() == 1
        assert asyncio.run(async_job()) == 2
    harness.flush()
    by_name = {e["event"]: e for e in harness.events}
    assert set(by_name) == {"report_generated", "sync_job", f"{async_job.__qualname__}"}
    report = by_name["report_generated"]
    assert report["distinct_id"] == "worker-user"
    assert report["properties"]["format"] == "pdf"
    assert report["properties"]["pages"] == 3
    assert report["properties"]["duration_ms"] >= 0
    assert by_name["sync_job"]["properties"]["queue"] == "default"


def test_span_event_properties(harness: Harness) -> None:
    with posthog.new_context():
        posthog.identify_context("u")
        posthog.tag("plan", "pro")
        with harness.tracer.start_as_current_span(
            "GET /items/{id}",
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": "GET",
                "url.scheme": "https",
                "server.address": "shop.example",
                "url.path": "/items/9",
                "url.query": "ref=mail",
                "client.address": "203.0.113.9",
                "user_agent.original": "Mozilla/5.0",
                "http.route": "/items/{id}",
                "custom": ("x", "y"),
            },
        ) as span:
            span.set_attribute("http.response.status_code", 404)
            span.set_status(trace.Status(trace.StatusCode.ERROR, "not found"))
    harness.flush()
    (event,) = harness.events
    props = event["properties"]
    ctx = harness.finished("GET /items/{id}").context
    assert props["$trace_id"] == format(ctx.trace_id, "032x")
    assert props["$span_id"] == format(ctx.span_id, "016x")
    assert props["$current_url"] == "https://shop.example/items/9?ref=mail"
    assert props["$request_method"] == "GET"
    assert props["$request_path"] == "/items/9"
    assert props["$ip"] == "203.0.113.9"
    assert props["$user_agent"] == "Mozilla/5.0"
    assert props["http_status_code"] == 404
    assert props["http_route"] == "/items/{id}"
    assert props["span_kind"] == "server"
    assert props["status"] == "error" and props["status_message"] == "not found"
    assert props["service.name"] == "checkout-api"
    assert props["plan"] == "pro"
    assert props["custom"] == ["x", "y"]
    assert not any(key.startswith("posthog.") for key in props)
    assert "posthogDistinctId" not in props


# -- exceptions ---------------------------------------------------------------------------


def test_exception_on_nested_spans_is_one_event_from_text(harness: Harness) -> None:
    span_exceptions.unhook_record_exception()  # the processor hooks it; test the text path
    with posthog.new_context(capture_exceptions=False):
        posthog.identify_context("u-exc")
        with (
            pytest.raises(ZeroDivisionError),
            harness.tracer.start_as_current_span("outer", kind=SpanKind.SERVER),
            harness.tracer.start_as_current_span("inner"),
        ):
            _ = 1 / 0
    harness.flush()
    (exc_event,) = harness.events.named("$exception")
    inner = harness.finished("inner").context
    assert exc_event["distinct_id"] == "u-exc"
    assert exc_event["properties"]["$span_id"] == format(inner.span_id, "016x")
    (entry,) = exc_event["properties"]["$exception_list"]
    assert entry["type"] == "ZeroDivisionError"
    assert entry["stacktrace"]["frames"][-1]["context_line"].strip() == "_ = 1 / 0"


def test_live_hook_captures_once_with_full_frames(harness: Harness) -> None:
    assert span_exceptions.is_hooked()  # installed by the processor
    try:
        with posthog.new_context():
            posthog.identify_context("u-live")
            posthog.tag("step", "pay")
            with (
                pytest.raises(KeyError),
                harness.tracer.start_as_current_span("outer", kind=SpanKind.SERVER),
                harness.tracer.start_as_current_span("inner"),
            ):
                {}["missing"]
        harness.flush()
    finally:
        span_exceptions.unhook_record_exception()
    (exc_event,) = harness.events.named("$exception")
    props = exc_event["properties"]
    assert exc_event["distinct_id"] == "u-live"
    assert props["step"] == "pay"
    assert props["$span_id"] == format(harness.finished("inner").context.span_id, "016x")
    frame = props["$exception_list"][0]["stacktrace"]["frames"][-1]
    assert frame["in_app"] is True and frame["pre_context"]
    for name in ("inner", "outer"):
        (event,) = [e for e in harness.finished(name).events if e.name == "exception"]
        assert (event.attributes or {})["posthog.exception_captured"] is True


def test_exception_recorded_without_escaping_is_handled(harness: Harness) -> None:
    with harness.tracer.start_as_current_span("work") as span:
        try:
            raise ValueError("soft")
        except ValueError as exc:
            span.record_exception(exc)
    harness.flush()
    (event,) = harness.events.named("$exception")
    assert event["properties"]["$exception_list"][0]["mechanism"]["handled"] is True
    assert event["properties"]["$process_person_profile"] is False


def test_shutdown_flushes_pending_events() -> None:
    client, events = memory_client()
    processor = PosthogSpanProcessor(client, capture_spans="all")
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for i in range(50):
        with tracer.start_as_current_span(f"s{i}"):
            pass
    provider.shutdown()
    assert len(events) == 50
    assert processor.stats()["dropped_spans"] == 0


def test_none_mode_still_captures_exceptions_of_identified_root_spans(
    posthog_events: CapturedEvents,
) -> None:
    """capture_spans="none" skips identified root spans, but not the exceptions they carry."""
    exception = {"exception.type": "ValueError", "exception.message": "bad basket"}
    for harness in _harness(posthog_events, capture_spans="none"):
        with posthog.new_context():
            posthog.identify_context("u-none")
            with harness.tracer.start_as_current_span("root", kind=SpanKind.SERVER) as span:
                span.add_event("exception", exception)
        # no PostHog context: identity from the span's own attributes
        with harness.tracer.start_as_current_span(
            "bare", kind=SpanKind.SERVER, attributes={"posthog.distinct_id": "u-bare"}
        ) as span:
            span.add_event("exception", exception)
        harness.flush()
        assert sorted((e["event"], e["distinct_id"]) for e in harness.events) == [
            ("$exception", "u-bare"),
            ("$exception", "u-none"),
        ]
