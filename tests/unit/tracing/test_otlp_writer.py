"""Our OTLP span writer against OpenTelemetry's own encoder: both outputs parsed with
opentelemetry-proto's generated classes must be equal messages, whatever the spans hold."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as stock_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from posthog_otel.tracing.otlp_writer import encode_spans

_text = st.text(max_size=20)
_scalar = st.one_of(
    _text,
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
)
_value = st.one_of(
    _scalar,
    st.lists(st.text(max_size=5), max_size=4),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=4),
    st.lists(st.booleans(), max_size=3),
    st.lists(st.floats(allow_nan=False), max_size=3),
)
_attributes = st.dictionaries(st.text(min_size=1, max_size=10), _value, max_size=6)


def _parse(body: bytes) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(body)


def _same(spans: list[ReadableSpan]) -> None:
    ours = _parse(encode_spans(spans))
    theirs = _parse(stock_encode(spans).SerializePartialToString())
    assert ours == theirs, f"ours:\n{ours}\ntheirs:\n{theirs}"


def test_a_varied_batch_is_encoded_as_the_stock_encoder_does() -> None:
    provider_a = TracerProvider(resource=Resource.create({"service.name": "a", "n": [1, 2]}))
    provider_b = TracerProvider(
        resource=Resource({"service.name": "b"}, schema_url="https://example/schema"),
        span_limits=SpanLimits(max_span_attributes=3, max_events=1, max_links=1),
    )
    tracer_a = provider_a.get_tracer("lib.one", "1.2", schema_url="https://s", attributes={"x": 1})
    tracer_a2 = provider_a.get_tracer("lib.two")
    tracer_b = provider_b.get_tracer("lib.b")
    remote = SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "v1"), ("other", "o")]),
    )
    spans: list[Any] = []
    with tracer_a.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        child = tracer_a2.start_span("child", kind=SpanKind.CLIENT, links=[trace.Link(remote)])
        child.set_status(StatusCode.ERROR, "boom")
        try:
            raise ValueError("déclined ✓")
        except ValueError as exc:
            child.record_exception(exc, {"extra": 1})
        child.end()
        spans.append(child)
    spans.append(root)
    remote_parent = trace.set_span_in_context(NonRecordingSpan(remote))
    continued = tracer_b.start_span(
        "continued", context=remote_parent, kind=SpanKind.CONSUMER,
        attributes={"a": 1, "b": 2, "c": 3, "d": 4, "e": 5},  # over the limit: dropped count
    )
    continued.add_event("one")
    continued.add_event("two")  # over the limit: dropped count
    continued.add_link(root.get_span_context(), {"k": "v"})
    continued.add_link(remote)
    continued.set_status(StatusCode.OK)
    continued.end()
    spans.append(continued)
    producer = tracer_a.start_span("p", kind=SpanKind.PRODUCER, attributes={"big": 2**62})
    producer.end()
    spans.append(producer)
    _same(spans)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=_text,
    attributes=_attributes,
    events=st.lists(st.tuples(_text, _attributes), max_size=3),
    kind=st.sampled_from(list(SpanKind)),
    status=st.sampled_from([StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR]),
    message=st.one_of(st.none(), _text),
)
def test_any_span_is_encoded_as_the_stock_encoder_does(
    name: str,
    attributes: dict[str, Any],
    events: list[tuple[str, dict[str, Any]]],
    kind: SpanKind,
    status: StatusCode,
    message: str | None,
) -> None:
    provider = TracerProvider(resource=Resource.create(attributes))
    span = provider.get_tracer("t").start_span(name, kind=kind, attributes=attributes)
    for event_name, event_attributes in events:
        span.add_event(event_name, event_attributes)
    span.set_status(status, message if status is StatusCode.ERROR else None)
    span.end()
    _same([span])
