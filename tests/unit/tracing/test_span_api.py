"""posthog-python's ``start_span``/``get_active_span`` on real OpenTelemetry spans."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from posthog_otel.tracing.span import TracingSpan, get_active_span, start_span

INBOUND = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def traced() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider.get_tracer("test"), memory
    provider.shutdown()


def test_handles_are_opentelemetry_spans_that_nest_with_instrumentation(
    traced: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, memory = traced
    with start_span(tracer, "POST /checkout", kind="server", attributes={"plan": "pro"}) as root:
        assert isinstance(root, trace.Span)
        assert get_active_span() is root
        assert trace.get_current_span() is root.span
        with tracer.start_as_current_span("library span"):
            with start_span(tracer, "db.query", kind="client") as child:
                assert get_active_span() is child
            active = get_active_span()
            assert active is not None and active.span.name == "library span"  # type: ignore[attr-defined]
    assert get_active_span() is None
    spans = {span.name: span for span in memory.get_finished_spans()}
    assert spans["POST /checkout"].kind is SpanKind.SERVER
    assert spans["POST /checkout"].attributes == {"plan": "pro"}
    assert spans["library span"].parent.span_id == spans["POST /checkout"].context.span_id
    assert spans["db.query"].parent.span_id == spans["library span"].context.span_id
    assert spans["db.query"].kind is SpanKind.CLIENT


def test_a_traceparent_string_continues_the_remote_trace(
    traced: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, memory = traced
    with start_span(tracer, "handler", parent=INBOUND, tracestate="vendor=1") as span:
        header = span.traceparent()
        assert span.tracestate() == "vendor=1"
    (finished,) = memory.get_finished_spans()
    assert format(finished.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(finished.parent.span_id, "016x") == "b7ad6b7169203331"
    assert finished.parent.is_remote
    assert header is not None and header.split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert header.split("-")[2] == format(finished.context.span_id, "016x")


def test_an_invalid_traceparent_starts_a_new_trace(
    traced: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, memory = traced
    with start_span(tracer, "outer"), start_span(tracer, "handler", parent="garbage"):
        pass
    spans = {span.name: span for span in memory.get_finished_spans()}
    assert spans["handler"].parent is None
    assert spans["handler"].context.trace_id != spans["outer"].context.trace_id


def test_a_raised_exception_is_recorded_and_sets_error_unless_ok(
    traced: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, memory = traced
    with pytest.raises(ValueError), start_span(tracer, "fails"):
        raise ValueError("declined")
    with pytest.raises(KeyError), start_span(tracer, "ok wins") as span:
        span.set_status("ok")
        raise KeyError("x")
    with pytest.raises(GeneratorExit), start_span(tracer, "control flow"):
        raise GeneratorExit
    spans = {span.name: span for span in memory.get_finished_spans()}
    fails = spans["fails"]
    assert fails.status.status_code is StatusCode.ERROR
    assert fails.status.description == "declined"
    (event,) = fails.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert "raise ValueError" in event.attributes["exception.stacktrace"]
    assert spans["ok wins"].status.status_code is StatusCode.OK
    assert [e.name for e in spans["ok wins"].events] == ["exception"]
    assert spans["control flow"].status.status_code is StatusCode.UNSET
    assert not spans["control flow"].events


def test_posthog_python_setters_chain_and_take_its_types(
    traced: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, memory = traced
    start = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    span = start_span(tracer, "manual", start_time=start)
    returned = (
        span.set_attribute("a", 1)
        .set_attributes({"b": [1, 2], "c": {"nested": True}, "d": None, "e": object()})
        .add_event("cache.miss", {"key": "user:42"}, timestamp=start.timestamp() + 1)
        .update_name("renamed")
        .set_status("error", "upstream timed out")
        .set_status("bogus")
    )
    assert returned is span
    span.end(start.timestamp() + 2)
    span.end()  # idempotent
    span.set_attribute("late", 1)  # ignored after end
    (finished,) = memory.get_finished_spans()
    assert finished.name == "renamed"
    assert finished.start_time == int(start.timestamp() * 1e9)
    assert finished.end_time == int((start.timestamp() + 2) * 1e9)
    assert finished.attributes["a"] == 1
    assert tuple(finished.attributes["b"]) == (1, 2)
    assert finished.attributes["c"] == '{"nested": true}'
    assert "d" not in finished.attributes
    assert finished.attributes["e"].startswith("<object")
    assert "late" not in finished.attributes
    assert finished.events[0].timestamp == int((start.timestamp() + 1) * 1e9)
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.status.description == "upstream timed out"


def test_record_exception_marks_the_span_failed(
    traced: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, memory = traced
    with start_span(tracer, "handled") as span:
        try:
            raise RuntimeError("card declined")
        except RuntimeError as exc:
            span.record_exception(exc)
    (finished,) = memory.get_finished_spans()
    assert finished.status.status_code is StatusCode.ERROR
    assert finished.events[0].attributes["exception.message"] == "card declined"


def test_off_is_inert_but_forwards_the_inbound_trace() -> None:
    with start_span(None, "anything", kind="server", parent=INBOUND) as span:
        assert not span.is_recording()
        assert span.traceparent() == INBOUND
        assert get_active_span() is span
        span.set_attribute("a", 1).set_status("error").record_exception(ValueError("x"))
    with start_span(None, "root") as root:
        assert root.traceparent() is None
    assert get_active_span() is None


def test_never_raises_on_bad_input(traced: tuple[trace.Tracer, InMemorySpanExporter]) -> None:
    tracer, memory = traced
    span = start_span(
        tracer, "weird", kind="nonsense", attributes="not a mapping", start_time="yesterday",
        parent=12345,
    )
    assert isinstance(span, TracingSpan)
    span.add_event("e", attributes=42, timestamp="never")  # type: ignore[arg-type]
    span.end(end_time="later")
    (finished,) = memory.get_finished_spans()
    assert finished.kind is SpanKind.INTERNAL


def test_the_active_span_follows_asyncio_tasks(
    traced: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, memory = traced

    async def child() -> None:
        with start_span(tracer, "task"):
            await asyncio.sleep(0)

    async def main() -> None:
        with start_span(tracer, "request"):
            await asyncio.gather(child(), child())

    asyncio.run(main())
    spans = memory.get_finished_spans()
    request = next(s for s in spans if s.name == "request")
    tasks = [s for s in spans if s.name == "task"]
    assert len(tasks) == 2
    assert all(t.parent.span_id == request.context.span_id for t in tasks)
