"""The bridge's decoding: our wire reader against the generated protobuf classes, OTLP JSON
written by hand per the spec, hostile bytes, and the shared OTLP answers."""

from __future__ import annotations

import contextlib
import gzip
import json
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.trace import SpanKind, StatusCode

from posthog_otel.bridge.limits import BadBody, BodyTooLarge, Inflater, MemoryBudget
from posthog_otel.bridge.logs import LogMapper
from posthog_otel.errors import FrameOptions
from posthog_otel.otlp.decode import DecodeError, decode_logs, decode_traces
from posthog_otel.otlp.responses import JSON, PROTOBUF, answer_type, export_response, status_body
from posthog_otel.spans.mapping import MappingOptions, SpanMapper
from tests.support.otlp_messages import (
    add_attributes,
    fill,
    reference_attributes,
    reference_value,
)

TRACE = "5B8EFFF798038103D269B633813FC60C"  # upper case, as in the OTLP spec's example
SPAN = "EEE19B7EC3C1B174"
PARENT = "eee19b7ec3c1b173"


def _everything(*_: Any) -> bool:
    return True


def _nothing(*_: Any) -> bool:
    return False


# --------------------------------------------------------------------------- reference decoder


# --------------------------------------------------------------------------- generated messages

_scalars = st.one_of(
    st.text(max_size=40),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=20),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_attribute_maps = st.dictionaries(st.text(min_size=1, max_size=20), _values, max_size=12)


_span_specs = st.fixed_dictionaries(
    {
        "name": st.text(min_size=1, max_size=30),
        "kind": st.integers(min_value=0, max_value=5),
        "parent": st.booleans(),
        "remote": st.sampled_from([None, True, False]),
        "start": st.integers(min_value=0, max_value=2**64 - 1),
        "end": st.integers(min_value=0, max_value=2**64 - 1),
        "status": st.integers(min_value=0, max_value=2),
        "message": st.text(max_size=20),
        "attributes": _attribute_maps,
        "events": st.lists(
            st.tuples(st.sampled_from(["exception", "log", ""]), _attribute_maps), max_size=3
        ),
    }
)


def _request(specs: list[dict[str, Any]], resource: dict[str, Any]) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    add_attributes(resource_spans.resource.attributes, resource)
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "test"
    for index, spec in enumerate(specs):
        span = scope.spans.add(
            trace_id=bytes.fromhex(TRACE),
            span_id=(index + 1).to_bytes(8, "big"),
            name=spec["name"],
            kind=spec["kind"],  # type: ignore[arg-type]
            start_time_unix_nano=spec["start"],
            end_time_unix_nano=spec["end"],
            trace_state="k=v",
        )
        if spec["parent"]:
            span.parent_span_id = bytes.fromhex(PARENT)
        if spec["remote"] is not None:
            span.flags = 0x100 | (0x200 if spec["remote"] else 0) | 0x01
        span.status.code = spec["status"]  # type: ignore[assignment]
        span.status.message = spec["message"]
        add_attributes(span.attributes, spec["attributes"])
        for name, attributes in spec["events"]:
            event = span.events.add(name=name, time_unix_nano=spec["start"])
            add_attributes(event.attributes, attributes)
        link = span.links.add(trace_id=bytes(16), span_id=bytes(8))  # skipped by the reader
        link.attributes.add(key="ignored")
    return request


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_span_specs, min_size=1, max_size=4), _attribute_maps)
def test_wire_reader_agrees_with_the_generated_classes(
    specs: list[dict[str, Any]], resource: dict[str, Any]
) -> None:
    request = _request(specs, resource)
    body = request.SerializeToString()
    batch = decode_traces(body, PROTOBUF, _everything, max_attributes=10_000)
    assert batch.total == len(specs) and batch.rejected == 0
    reference = request.resource_spans[0].scope_spans[0].spans
    assert len(batch.items) == len(reference)
    for ours, theirs in zip(batch.items, reference, strict=True):
        assert ours.name == theirs.name
        assert ours.context.trace_id == int(TRACE, 16)
        assert ours.context.span_id == int.from_bytes(theirs.span_id, "big")
        assert ours.kind == {2: SpanKind.SERVER, 3: SpanKind.CLIENT, 4: SpanKind.PRODUCER}.get(
            theirs.kind, {5: SpanKind.CONSUMER}.get(theirs.kind, SpanKind.INTERNAL)
        )
        if theirs.parent_span_id:
            assert ours.parent is not None
            assert ours.parent.span_id == int(PARENT, 16)
            assert ours.parent.is_remote == (
                bool(theirs.flags & 0x200) if theirs.flags & 0x100 else True
            )
        else:
            assert ours.parent is None
        assert (ours.start_time, ours.end_time) == (
            theirs.start_time_unix_nano,
            theirs.end_time_unix_nano,
        )
        assert ours.status.status_code == StatusCode(theirs.status.code)
        assert ours.status.description == theirs.status.message
        assert ours.attributes == reference_attributes(theirs.attributes)
        assert [(e.name, e.timestamp, e.attributes) for e in ours.events] == [
            (e.name, e.time_unix_nano, reference_attributes(e.attributes)) for e in theirs.events
        ]
        assert ours.resource.attributes == reference_attributes(
            request.resource_spans[0].resource.attributes
        )


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=24), _attribute_maps, _values, st.text(max_size=10)
        ),
        min_size=1,
        max_size=4,
    )
)
def test_wire_reader_agrees_on_log_records(
    records: list[tuple[int, dict[str, Any], Any, str]],
) -> None:
    request = ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    for severity, attributes, body, text in records:
        record = scope.log_records.add(
            severity_number=severity,  # type: ignore[arg-type]
            severity_text=text,
            time_unix_nano=123,
            observed_time_unix_nano=456,
            trace_id=bytes.fromhex(TRACE),
            span_id=bytes.fromhex(SPAN),
            event_name="e",
            flags=1,
        )
        fill(record.body, body)
        add_attributes(record.attributes, attributes)
    batch = decode_logs(request.SerializeToString(), PROTOBUF, _everything, 10_000)
    assert batch.total == len(records)
    for ours, theirs in zip(batch.items, scope.log_records, strict=True):
        assert ours.severity_number == theirs.severity_number
        assert ours.severity_text == theirs.severity_text
        assert ours.timestamp == 123
        assert ours.body == reference_value(theirs.body)
        assert ours.attributes == reference_attributes(theirs.attributes)
        assert (ours.trace_id, ours.span_id) == (int(TRACE, 16), int(SPAN, 16))
        assert ours.event_name == "e"


# --------------------------------------------------------------------------- lazy decoding


def test_unwanted_spans_are_counted_but_not_decoded() -> None:
    request = _request(
        [
            {
                "name": f"s{i}",
                "kind": 1,
                "parent": True,
                "remote": False,
                "start": 1,
                "end": 2,
                "status": 0,
                "message": "",
                "attributes": {"a": i},
                "events": [],
            }
            for i in range(5)
        ],
        {},
    )
    seen: list[tuple[Any, ...]] = []

    def want(*args: Any) -> bool:
        seen.append(args)
        return False

    batch = decode_traces(request.SerializeToString(), PROTOBUF, want)
    assert (batch.total, batch.rejected, batch.items) == (5, 0, [])
    # one probe for the whole body, then one quick look per span (remote parent assumed)
    assert seen[1:] == [(SpanKind.INTERNAL, False, False, False)] * 5


def test_roots_mode_decodes_only_roots_exceptions_and_marked_spans() -> None:
    mapper = SpanMapper(MappingOptions(capture_spans="roots"))
    base = {"start": 1, "end": 2, "status": 0, "message": "", "remote": None}
    request = _request(
        [
            {**base, "name": "root", "kind": 2, "parent": False, "attributes": {}, "events": []},
            {**base, "name": "child", "kind": 1, "parent": True, "attributes": {}, "events": []},
            {
                **base,
                "name": "failing",
                "kind": 3,
                "parent": True,
                "attributes": {},
                "events": [("exception", {"exception.type": "E"})],
            },
            {
                **base,
                "name": "marked",
                "kind": 1,
                "parent": True,
                "attributes": {"posthog.event": "thing done"},
                "events": [],
            },
        ],
        {},
    )
    batch = decode_traces(request.SerializeToString(), PROTOBUF, mapper.may_yield)
    assert [span.name for span in batch.items] == ["root", "failing", "marked"]
    assert batch.exception_events == 1


# --------------------------------------------------------------------------- OTLP JSON


def _json_body() -> bytes:
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": TRACE,
                                "spanId": SPAN,
                                "parentSpanId": PARENT,
                                "flags": 768,
                                "name": "POST /pay",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "attributes": [
                                    {"key": "user.id", "value": {"stringValue": "user-7"}},
                                    {"key": "session.id", "value": {"stringValue": "sess-7"}},
                                    {"key": "posthog.tag.plan", "value": {"stringValue": "pro"}},
                                    {
                                        "key": "http.request.method",
                                        "value": {"stringValue": "POST"},
                                    },
                                    {
                                        "key": "http.response.status_code",
                                        "value": {"intValue": "500"},
                                    },
                                    {"key": "big", "value": {"intValue": "9007199254740993"}},
                                    {"key": "ratio", "value": {"doubleValue": 0.5}},
                                    {
                                        "key": "tags",
                                        "value": {
                                            "arrayValue": {
                                                "values": [{"stringValue": "a"}, {"intValue": 2}]
                                            }
                                        },
                                    },
                                ],
                                "events": [
                                    {
                                        "timeUnixNano": "1700000000100000000",
                                        "name": "exception",
                                        "attributes": [
                                            {
                                                "key": "exception.type",
                                                "value": {
                                                    "stringValue": "java.lang.IllegalStateException"
                                                },
                                            },
                                            {
                                                "key": "exception.message",
                                                "value": {"stringValue": "card declined"},
                                            },
                                            {
                                                "key": "exception.stacktrace",
                                                "value": {
                                                    "stringValue": "java.lang.IllegalStateException: card declined\n"
                                                    "\tat com.shop.Pay.charge(Pay.java:42)\n"
                                                    "\tat com.shop.Api.pay(Api.java:7)\n"
                                                },
                                            },
                                        ],
                                    }
                                ],
                                "status": {"code": 2, "message": "declined"},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    return json.dumps(document).encode()


def test_hand_written_otlp_json_decodes_per_the_spec() -> None:
    batch = decode_traces(_json_body(), JSON, _everything)
    (span,) = batch.items
    assert span.context.trace_id == int(TRACE, 16)
    assert span.context.span_id == int(SPAN, 16)
    assert span.parent is not None and span.parent.span_id == int(PARENT, 16)
    assert span.parent.is_remote  # flags 0x300: known, remote
    assert span.kind is SpanKind.SERVER
    assert span.start_time == 1_700_000_000_000_000_000
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["big"] == 9007199254740993  # exact: 64-bit ints travel as text
    assert span.attributes["tags"] == ["a", 2]
    assert span.resource.attributes == {"service.name": "checkout"}

    mapper = SpanMapper(MappingOptions(frame_options=FrameOptions(local_source=False)))
    request_event, exception = mapper.events_for(span)
    assert request_event.name == "POST /pay"
    assert request_event.distinct_id == "user-7"
    props = request_event.properties
    assert props["$trace_id"] == TRACE.lower() and props["$span_id"] == SPAN.lower()
    assert props["$session_id"] == "sess-7" and props["plan"] == "pro"
    assert props["$request_method"] == "POST" and props["http_status_code"] == 500
    assert props["service.name"] == "checkout" and props["duration_ms"] == 250.0
    entry = exception.properties["$exception_list"][0]
    assert (entry["type"], entry["value"], entry["module"]) == (
        "IllegalStateException",
        "card declined",
        "java.lang",
    )
    assert [f["function"] for f in entry["stacktrace"]["frames"]] == ["pay", "charge"]


def test_otlp_json_enum_names_and_numbers_as_text_are_accepted() -> None:
    document = json.loads(_json_body())
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["kind"] = "SPAN_KIND_CONSUMER"
    span["status"] = {"code": "STATUS_CODE_OK"}
    span["startTimeUnixNano"] = 1700000000000000000
    (decoded,) = decode_traces(json.dumps(document).encode(), JSON, _everything).items
    assert decoded.kind is SpanKind.CONSUMER
    assert decoded.status.status_code is StatusCode.OK
    assert decoded.start_time == 1700000000000000000


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"traceId": "W4727/eAOBA9JptjOBP8YA=="}, "traceId"),  # base64: proto3 JSON, not OTLP
        ({"spanId": "eee19b7ec3c1b17"}, "spanId"),
        ({"traceId": "0" * 32}, "traceId"),
        ({"parentSpanId": "xyz"}, "parentSpanId"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_json_spans_are_rejected_one_by_one(change: dict[str, str], reason: str) -> None:
    document = json.loads(_json_body())
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], **change})
    batch = decode_traces(json.dumps(document).encode(), JSON, _everything)
    assert (batch.total, batch.rejected, len(batch.items)) == (2, 1, 1)
    assert reason in (batch.first_error or "")


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b"{not json",
        b'{"resourceSpans": {"a": 1}}',
        "\ud800".encode("utf-8", "surrogatepass"),
        b"[" * 100_000,
    ],
)
def test_undecodable_json_is_a_decode_error(body: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_traces(body, JSON, _everything)


def test_hand_written_json_logs_become_exception_and_marked_events() -> None:
    document = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "worker"}}]
                },
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000000",
                                "severityNumber": 17,
                                "severityText": "ERROR",
                                "traceId": TRACE,
                                "spanId": SPAN,
                                "body": {"stringValue": "payment failed"},
                                "attributes": [
                                    {"key": "posthogDistinctId", "value": {"stringValue": "u-9"}},
                                    {"key": "sessionId", "value": {"stringValue": "s-9"}},
                                    {
                                        "key": "exception.type",
                                        "value": {"stringValue": "ValueError"},
                                    },
                                    {"key": "exception.message", "value": {"stringValue": "bad"}},
                                    {
                                        "key": "exception.stacktrace",
                                        "value": {
                                            "stringValue": "Traceback (most recent call last):\n"
                                            '  File "/srv/app/pay.py", line 3, in charge\n'
                                            "    raise ValueError('bad')\n"
                                            "ValueError: bad\n"
                                        },
                                    },
                                ],
                            },
                            {
                                "severityNumber": "SEVERITY_NUMBER_INFO",
                                "body": {"stringValue": "signed up"},
                                "attributes": [
                                    {
                                        "key": "posthog.event",
                                        "value": {"stringValue": "user signed up"},
                                    },
                                    {"key": "user.id", "value": {"stringValue": "u-1"}},
                                    {"key": "plan", "value": {"stringValue": "pro"}},
                                ],
                            },
                            {"severityNumber": 13, "body": {"stringValue": "just a warning"}},
                            {"severityNumber": 21, "body": {"stringValue": "fatal, no exception"}},
                        ]
                    }
                ],
            }
        ]
    }
    spans = SpanMapper(MappingOptions(frame_options=FrameOptions(local_source=False)))
    logs = LogMapper(spans, min_severity=17)
    batch = decode_logs(json.dumps(document).encode(), JSON, logs.may_yield)
    assert batch.total == 4
    events = [event for record in batch.items for event in logs.events_for(record)]
    assert [(e.name, e.distinct_id) for e in events] == [
        ("$exception", "u-9"),
        ("user signed up", "u-1"),
    ]
    exception, marked = (e.properties for e in events)
    assert exception["$session_id"] == "s-9" and exception["$trace_id"] == TRACE.lower()
    assert exception["message"] == "payment failed" and exception["service.name"] == "worker"
    (entry,) = exception["$exception_list"]
    frame = entry["stacktrace"]["frames"][0]
    assert (entry["type"], frame["abs_path"], frame["function"], frame["lineno"]) == (
        "ValueError",
        "/srv/app/pay.py",
        "charge",
        3,
    )
    assert frame["context_line"] == "raise ValueError('bad')"  # from the text, not a local file
    assert marked["plan"] == "pro" and marked["message"] == "signed up"
    assert "posthog.event" not in marked


# --------------------------------------------------------------------------- hostile bytes


def _sample_body() -> bytes:
    spec = {
        "name": "GET /x",
        "kind": 2,
        "parent": False,
        "remote": None,
        "start": 1,
        "end": 2,
        "status": 2,
        "message": "m",
        "attributes": {"posthog.distinct_id": "u", "n": [1, {"k": b"x"}]},
        "events": [("exception", {"exception.type": "E", "exception.stacktrace": "E: x"})],
    }
    return _request([spec, spec], {"service.name": "s"}).SerializeToString()


def test_every_truncation_is_a_decode_error_or_a_valid_prefix() -> None:
    body = _sample_body()
    for cut in range(len(body)):
        try:
            batch = decode_traces(body[:cut], PROTOBUF, _everything)
        except DecodeError:
            continue
        assert batch.total <= 2


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_protobuf_never_raises_anything_but_decode_error(data: st.DataObject) -> None:
    body = bytearray(_sample_body())
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(body) - 1))
        body[index] = data.draw(st.integers(0, 255))
    for decode in (decode_traces, decode_logs):
        with contextlib.suppress(DecodeError):
            decode(bytes(body), PROTOBUF, _everything)  # type: ignore[operator]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_decode_error(body: bytes) -> None:
    for decode in (decode_traces, decode_logs):
        with contextlib.suppress(DecodeError):
            decode(body, PROTOBUF, _everything)  # type: ignore[operator]


def test_deep_nesting_is_refused_not_a_crash() -> None:
    value = AnyValue(string_value="x")
    for _ in range(90):
        outer = AnyValue()
        outer.array_value.values.add().CopyFrom(value)
        value = outer
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN), name="deep")
    )
    span.attributes.add(key="deep").value.CopyFrom(value)
    with pytest.raises(DecodeError):
        decode_traces(request.SerializeToString(), PROTOBUF, _everything)


def test_attributes_over_the_limit_keep_identity() -> None:
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN), name="wide", kind=2)
    )
    for i in range(1000):
        span.attributes.add(key=f"a{i}").value.int_value = i
    span.attributes.add(key="posthog.distinct_id").value.string_value = "user-1"
    (decoded,) = decode_traces(request.SerializeToString(), PROTOBUF, _everything, 50).items
    assert len(decoded.attributes) == 51
    assert decoded.attributes["posthog.distinct_id"] == "user-1"


# --------------------------------------------------------------------------- bodies


def test_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(bytes(50 * 1024 * 1024), compresslevel=9)  # ~50 KiB on the wire
    inflater = Inflater.for_encoding("gzip", cap=1024 * 1024)
    assert inflater is not None
    with pytest.raises(BodyTooLarge):
        for start in range(0, len(bomb), 16_384):
            inflater.feed(bomb[start : start + 16_384])
            assert inflater.size <= 1024 * 1024


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", lambda b: gzip.compress(b[:10]) + gzip.compress(b[10:])),  # two members
        ("deflate", zlib.compress),  # what the OTLP exporters send
        ("deflate", lambda b: zlib.compress(b, wbits=-15)),  # raw deflate
        ("identity", lambda b: b),
        (None, lambda b: b),
    ],
)
def test_encodings(encoding: str | None, compress: Any) -> None:
    body = b"x" * 1000 + bytes(range(256))
    inflater = Inflater.for_encoding(encoding, cap=4096)
    assert inflater is not None
    data = compress(body)
    for start in range(0, len(data), 7):
        inflater.feed(data[start : start + 7])
    assert inflater.finish() == body


def test_truncated_or_corrupt_gzip_is_a_bad_body() -> None:
    data = gzip.compress(b"y" * 10_000)
    inflater = Inflater.for_encoding("gzip", cap=1 << 20)
    assert inflater is not None
    inflater.feed(data[:-20])
    with pytest.raises(BadBody):
        inflater.finish()
    corrupt = Inflater.for_encoding("gzip", cap=1 << 20)
    assert corrupt is not None
    with pytest.raises(BadBody):
        corrupt.feed(b"\x1f\x8b\x08\x00garbage-garbage")
    assert Inflater.for_encoding("br", cap=10) is None


def test_memory_budget_always_admits_a_lone_request() -> None:
    budget = MemoryBudget(100)
    assert budget.reserve(1, 500)  # alone: admitted even over the budget
    assert not budget.reserve(2, 1)  # others wait
    budget.release(1)
    assert budget.reserve(2, 60) and budget.reserve(3, 40) and not budget.reserve(3, 41)
    budget.release(2)
    budget.release(3)
    assert budget.held == 0


# --------------------------------------------------------------------------- answers


def test_answers_match_the_generated_messages() -> None:
    assert answer_type("application/x-protobuf") == PROTOBUF
    assert answer_type("application/protobuf") == PROTOBUF
    assert answer_type("Application/JSON; charset=utf-8") == JSON
    assert answer_type("text/plain") is None
    traces = ExportTraceServiceResponse.FromString(
        export_response("traces", PROTOBUF, 3, "span without a name")
    )
    assert traces.partial_success.rejected_spans == 3
    assert traces.partial_success.error_message == "span without a name"
    logs = ExportLogsServiceResponse.FromString(export_response("logs", PROTOBUF, 300, "é"))
    assert logs.partial_success.rejected_log_records == 300
    assert export_response("traces", PROTOBUF) == b""
    assert json.loads(export_response("logs", JSON, 1, "x")) == {
        "partialSuccess": {"rejectedLogRecords": 1, "errorMessage": "x"}
    }
    from google.rpc import status_pb2

    status = status_pb2.Status.FromString(status_body(3, "bad " * 100, PROTOBUF))
    assert (status.code, status.message) == (3, "bad " * 100)
    assert json.loads(status_body(16, "who?", JSON)) == {"code": 16, "message": "who?"}


def test_http_fast_path_knows_every_key_http_properties_reads() -> None:
    import inspect
    import re

    from posthog_otel.spans import mapping

    read = set(re.findall(r'get\("([^"]+)"\)', inspect.getsource(mapping.http_properties)))
    assert read == set(mapping._HTTP_KEYS)
