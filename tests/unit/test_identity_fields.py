"""The identity vocabulary, and the device id carried end to end through every path.

The device id was added by one entry in ``posthog_otel/_identity.py`` (plus its public
setter/getter); these tests show it travels everywhere the other identity fields do:
contexts (with posthog-python's semantics, checked against posthog-python itself), events,
span attributes, baggage and headers over real HTTP, the span exporter and the bridge's
OTLP mapping.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import posthog.contexts as oracle
import pytest
import requests
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import posthog_otel as ph
from posthog_otel import _identity
from posthog_otel.instrumentors.requests import PosthogRequestsInstrumentor
from posthog_otel.propagation.destination import with_destination
from posthog_otel.propagation.propagator import PosthogPropagator
from posthog_otel.spans.mapping import SpanMapper, identity_from_attributes
from posthog_otel.testing import CapturedEvents
from tests.support.http_echo import EchoServer

# -- the vocabulary ---------------------------------------------------------------------------


def test_every_field_has_distinct_spellings_under_the_posthog_prefix() -> None:
    fields = _identity.FIELDS
    assert [f.name for f in fields] == ["distinct_id", "session_id", "window_id", "device_id"]
    for spelling in ("name", "attribute", "header"):
        values = [getattr(f, spelling) for f in fields]
        assert len(set(values)) == len(values), spelling
    for field in fields:
        assert field.attribute == _identity.PREFIX + field.name
        assert field.header == "X-POSTHOG-" + field.name.upper().replace("_", "-")
        assert _identity.BY_ATTRIBUTE[field.attribute] is field
        assert _identity.BY_HEADER[field.header.lower()] is field
    assert _identity.DEVICE_ID.event_property == "$device_id"
    assert _identity.DISTINCT_ID.event_property is None  # a top-level event field


def test_attributes_round_trip_and_aliases_are_read_in_order() -> None:
    ids = {"distinct_id": "u1", "session_id": "s1", "window_id": "w1", "device_id": "d1"}
    stamped = _identity.stamp_attributes(ids)
    assert stamped["posthog.device_id"] == "d1"
    assert stamped["posthogDistinctId"] == "u1" and stamped["sessionId"] == "s1"
    assert _identity.read_attributes(stamped) == ids
    assert (
        _identity.stamp_attributes(ids, native_aliases=False)
        .keys()
        .isdisjoint(_identity.NATIVE_NAMES)
    )
    read = _identity.read_attributes({"enduser.id": "later", "user.id": "", "session.id": "s"})
    assert read == {"distinct_id": "later", "session_id": "s"}
    props: dict[str, object] = {"$session_id": "explicit"}
    _identity.event_properties(ids, props)
    assert props == {"$session_id": "explicit", "$window_id": "w1", "$device_id": "d1"}


# -- contexts: the same answers as posthog-python ---------------------------------------------


def _device_ids(contexts: object) -> list[object]:
    """Set and read device ids through nesting, fresh contexts and exits."""
    new_context = contexts.new_context  # type: ignore[attr-defined]
    set_device = contexts.set_context_device_id  # type: ignore[attr-defined]
    get_device = contexts.get_context_device_id  # type: ignore[attr-defined]
    seen: list[object] = []
    set_device("outside")  # no context: a no-op
    seen.append(get_device())
    with new_context():
        seen.append(get_device())
        set_device("d-parent")
        with new_context():
            seen.append(get_device())  # inherited
            set_device("d-child")
            seen.append(get_device())
        seen.append(get_device())  # the child's value stayed in the child
        with new_context(fresh=True):
            seen.append(get_device())  # a fresh context starts empty
        seen.append(get_device())
    seen.append(get_device())
    return seen


def test_device_id_context_semantics_match_posthog_python() -> None:
    expected = _device_ids(oracle)
    assert expected == [None, None, "d-parent", "d-child", "d-parent", None, "d-parent", None]
    assert _device_ids(ph) == expected


# -- events and spans -------------------------------------------------------------------------


def test_captured_events_carry_device_id(posthog_events: CapturedEvents) -> None:
    with ph.new_context():
        ph.identify_context("u1")
        ph.set_context_device_id("device-1")
        ph.capture("clicked")
        ph.capture("overridden", properties={"$device_id": "explicit"})
    clicked, overridden = posthog_events.named("clicked") + posthog_events.named("overridden")
    assert clicked["properties"]["$device_id"] == "device-1"
    assert overridden["properties"]["$device_id"] == "explicit"
    assert ph.get_context_device_id() is None


@pytest.fixture
def tracing(
    posthog_events: CapturedEvents,
) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider = TracerProvider()
    provider.add_span_processor(ph.PosthogSpanProcessor(posthog_events.client))
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield provider, spans
    provider.shutdown()


def test_spans_are_stamped_with_device_id_early_and_late(
    tracing: tuple[TracerProvider, InMemorySpanExporter], posthog_events: CapturedEvents
) -> None:
    provider, spans = tracing
    tracer = provider.get_tracer("test")
    with ph.new_context():
        ph.set_context_device_id("early")
        with tracer.start_as_current_span("early-span"):
            pass
    with tracer.start_as_current_span("request", kind=SpanKind.SERVER), ph.new_context():
        ph.identify_context("u1")
        ph.set_context_device_id("late")  # set inside the request's span
    provider.force_flush()
    attributes = {s.name: dict(s.attributes or {}) for s in spans.get_finished_spans()}
    assert attributes["early-span"]["posthog.device_id"] == "early"
    assert attributes["request"]["posthog.device_id"] == "late"
    (request_event,) = posthog_events.named("request")
    assert request_event["distinct_id"] == "u1"
    assert request_event["properties"]["$device_id"] == "late"


def test_exporter_mapping_reads_device_id_back_from_attributes() -> None:
    identity = identity_from_attributes({"posthog.distinct_id": "u1", "posthog.device_id": "d1"})
    assert identity.ids == {"distinct_id": "u1", "device_id": "d1"}
    provider = TracerProvider()
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    with provider.get_tracer("t").start_as_current_span("checkout", kind=SpanKind.SERVER) as span:
        span.set_attribute("posthog.distinct_id", "u1")
        span.set_attribute("posthog.device_id", "d1")
    (finished,) = spans.get_finished_spans()
    (event,) = SpanMapper().events_for(finished)
    assert event.distinct_id == "u1"
    assert event.properties["$device_id"] == "d1"
    assert "posthog.device_id" not in event.properties


# -- propagation: baggage and headers, in a real HTTP request ---------------------------------


def test_propagator_round_trips_device_id() -> None:
    propagator = PosthogPropagator()
    with ph.new_context():
        ph.identify_context("u1")
        ph.set_context_device_id("device 1")  # a space: percent-encoded in baggage
        carrier: dict[str, str] = {}
        propagator.inject(carrier, with_destination("http://billing/"))
    assert carrier["X-POSTHOG-DEVICE-ID"] == "device 1"
    assert "posthog.device_id=device%201" in carrier["baggage"].split(",")
    for only in ({"baggage": carrier["baggage"]}, {"X-POSTHOG-DEVICE-ID": "device 1"}):
        scope = ph.current_scope(propagator.extract(only, Context()))
        assert scope is not None and scope.resolve().get("device_id") == "device 1"


def test_device_id_goes_to_an_internal_host_over_http() -> None:
    instrumentor = PosthogRequestsInstrumentor()
    instrumentor.instrument()
    try:
        with EchoServer() as echo, ph.new_context():
            ph.set_context_device_id("device-7")
            answer = requests.get(echo.url(), timeout=5)
        headers = answer.json()
    finally:
        instrumentor.uninstrument()
    assert headers["x-posthog-device-id"] == ["device-7"]
    assert "posthog.device_id=device-7" in headers["baggage"][0].split(",")


# -- the bridge: another service's spans arrive as OTLP JSON ----------------------------------


def test_bridge_maps_device_id_from_otlp_attributes() -> None:
    from posthog_otel.otlp.decode import decode_traces
    from posthog_otel.otlp.responses import JSON

    def attr(key: str, value: str) -> dict[str, object]:
        return {"key": key, "value": {"stringValue": value}}

    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "GET /cart",
        "kind": 2,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000100000000",
        "attributes": [attr("posthog.distinct_id", "u9"), attr("posthog.device_id", "d9")],
    }
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    mapper = SpanMapper()
    batch = decode_traces(json.dumps(body).encode(), JSON, want=mapper.may_yield)
    (decoded,) = batch.items
    (event,) = mapper.events_for(decoded)
    assert event.distinct_id == "u9"
    assert event.properties["$device_id"] == "d9"


def test_bridge_log_records_carry_device_id() -> None:
    from posthog_otel.bridge.logs import LogMapper
    from posthog_otel.otlp.decode import decode_logs
    from posthog_otel.otlp.responses import JSON

    record = {
        "severityNumber": 9,
        "body": {"stringValue": "signed up"},
        "attributes": [
            {"key": "posthog.event", "value": {"stringValue": "user signed up"}},
            {"key": "posthog.distinct_id", "value": {"stringValue": "u-1"}},
            {"key": "posthog.device_id", "value": {"stringValue": "d-1"}},
        ],
    }
    body = {"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}
    logs = LogMapper(SpanMapper())
    batch = decode_logs(json.dumps(body).encode(), JSON, logs.may_yield)
    (event,) = [event for item in batch.items for event in logs.events_for(item)]
    assert (event.name, event.distinct_id) == ("user signed up", "u-1")
    assert event.properties["$device_id"] == "d-1"
    assert not any(key.startswith("posthog.") for key in event.properties)


def test_celery_task_headers_carry_device_id_to_the_worker() -> None:
    from types import SimpleNamespace

    from posthog_otel.instrumentors._celery_headers import inbound_state, write_headers

    headers: dict[str, object] = {}
    with ph.new_context():
        ph.identify_context("u1")
        ph.set_context_device_id("device-3")
        write_headers(headers)
    assert headers["X-POSTHOG-DEVICE-ID"] == "device-3"
    assert "posthog.device_id=device-3" in str(headers["baggage"]).split(",")
    # a worker's task request exposes the message headers as attributes
    only_header = SimpleNamespace(**{"X-POSTHOG-DEVICE-ID": "device-3"})
    only_baggage = SimpleNamespace(baggage=headers["baggage"])
    for request in (only_header, only_baggage):
        assert inbound_state(request).ids["device_id"] == "device-3"

    from posthog_otel.propagation.destination import with_destination

    propagator = PosthogPropagator()
    with ph.new_context():
        ph.set_context_device_id("device-1")
        carrier = {"X-POSTHOG-DEVICE-ID": "stale", "baggage": "posthog.device_id=x,other=1"}
        propagator.inject(carrier, with_destination("https://api.example.com/collect"))
    assert carrier == {"baggage": "other=1"}
