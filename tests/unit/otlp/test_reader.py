"""The one OTLP reader (``posthog_otel.otlp``) against opentelemetry-proto's generated classes.

Export requests with every attribute value type, nested arrays and kvlists, bytes, events,
links, status, several resources and scopes, and log records with every body type are built
with the generated classes, serialised as protobuf and as OTLP JSON (hex ids, integer enums,
64-bit integers as text), and read back: what our reader returns must be what the generated
classes parse, for the sink's full read and for the bridge's lazy one.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf.json_format import MessageToDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from posthog_otel.otlp.decode import decode_logs, decode_traces
from posthog_otel.otlp.items import Item, read_logs, read_traces
from posthog_otel.otlp.responses import JSON, PROTOBUF
from tests.support.otlp_messages import (
    add_attributes,
    fill,
    reference_attributes,
    reference_value,
)

_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})

# --------------------------------------------------------------------------- the reference


def _hex(raw: bytes, size: int) -> str | None:
    return raw.hex() if len(raw) == size and any(raw) else None


def _scope(scope: Any) -> tuple[str | None, str | None]:
    return (scope.name or None, scope.version or None)


def _expected_spans(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    out = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                valid = _hex(span.trace_id, 16) and _hex(span.span_id, 8) and span.name
                out.append(
                    {
                        "resource": reference_attributes(resource_spans.resource.attributes),
                        "scope": _scope(scope_spans.scope),
                        "rejected": not valid,
                        "value": (
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            _hex(span.parent_span_id, 8),
                            span.name,
                            span.kind,
                            span.start_time_unix_nano,
                            span.end_time_unix_nano,
                            span.status.code,
                            span.status.message,
                            reference_attributes(span.attributes),
                            tuple(
                                (e.name, e.time_unix_nano, reference_attributes(e.attributes))
                                for e in span.events
                            ),
                            tuple(
                                (
                                    _hex(link.trace_id, 16),
                                    _hex(link.span_id, 8),
                                    reference_attributes(link.attributes),
                                )
                                for link in span.links
                            ),
                        )
                        if valid
                        else None,
                    }
                )
    return out


def _expected_logs(request: ExportLogsServiceRequest) -> list[dict[str, Any]]:
    out = []
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                out.append(
                    {
                        "resource": reference_attributes(resource_logs.resource.attributes),
                        "scope": _scope(scope_logs.scope),
                        "rejected": False,
                        "value": (
                            record.time_unix_nano,
                            record.observed_time_unix_nano,
                            record.severity_number,
                            record.severity_text,
                            reference_value(record.body),
                            reference_attributes(record.attributes),
                            _hex(record.trace_id, 16),
                            _hex(record.span_id, 8),
                            record.event_name,
                        ),
                    }
                )
    return out


def _ours(items: list[Item]) -> list[dict[str, Any]]:
    return [
        {
            "resource": item.resource,
            "scope": tuple(item.scope),
            "rejected": item.error is not None,
            "value": None
            if item.value is None
            else tuple(
                tuple(tuple(entry) for entry in field) if isinstance(field, tuple) else field
                for field in item.value
            ),
        }
        for item in items
    ]


def _otlp_json(message: Any) -> bytes:
    """OTLP JSON as the spec defines it: proto3 JSON with integer enums and hex ids."""
    document = MessageToDict(message, use_integers_for_enums=True)

    def hex_ids(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in _ID_FIELDS and isinstance(item, str):
                    value[key] = base64.b64decode(item).hex()
                else:
                    hex_ids(item)
        elif isinstance(value, list):
            for item in value:
                hex_ids(item)

    hex_ids(document)
    return json.dumps(document).encode()


# --------------------------------------------------------------------------- generated messages

_scalars = st.one_of(
    st.text(max_size=30),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=16),
    st.none(),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_attribute_maps = st.dictionaries(st.text(min_size=1, max_size=16), _values, max_size=8)
_ids16 = st.one_of(st.binary(min_size=16, max_size=16), st.just(b""), st.just(bytes(16)))
_ids8 = st.one_of(st.binary(min_size=8, max_size=8), st.just(b""), st.just(bytes(8)))
_times = st.integers(min_value=0, max_value=2**64 - 1)


_spans = st.fixed_dictionaries(
    {
        "trace_id": _ids16,
        "span_id": _ids8,
        "parent": _ids8,
        "name": st.text(max_size=20),
        "kind": st.integers(min_value=0, max_value=5),
        "flags": st.sampled_from([0, 0x101, 0x301]),
        "start": _times,
        "end": _times,
        "status": st.integers(min_value=0, max_value=2),
        "message": st.text(max_size=12),
        "attributes": _attribute_maps,
        "events": st.lists(
            st.tuples(st.sampled_from(["exception", "log", ""]), _times, _attribute_maps),
            max_size=3,
        ),
        "links": st.lists(st.tuples(_ids16, _ids8, _attribute_maps), max_size=2),
    }
)
_scopes = st.tuples(st.text(max_size=10), st.text(max_size=6), _attribute_maps)


@st.composite
def _trace_requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        resource_spans = request.resource_spans.add()
        add_attributes(resource_spans.resource.attributes, draw(_attribute_maps))
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            block = resource_spans.scope_spans.add(schema_url="https://example.com/schema")
            name, version, attributes = draw(_scopes)
            block.scope.name, block.scope.version = name, version
            add_attributes(block.scope.attributes, attributes)
            for spec in draw(st.lists(_spans, max_size=3)):
                span = block.spans.add(
                    trace_id=spec["trace_id"],
                    span_id=spec["span_id"],
                    parent_span_id=spec["parent"],
                    name=spec["name"],
                    kind=spec["kind"],
                    flags=spec["flags"],
                    start_time_unix_nano=spec["start"],
                    end_time_unix_nano=spec["end"],
                    trace_state="vendor=1",
                    dropped_attributes_count=1,
                )
                span.status.code = spec["status"]
                span.status.message = spec["message"]
                add_attributes(span.attributes, spec["attributes"])
                for event_name, time, attributes in spec["events"]:
                    event = span.events.add(name=event_name, time_unix_nano=time)
                    add_attributes(event.attributes, attributes)
                for trace_id, span_id, attributes in spec["links"]:
                    link = span.links.add(trace_id=trace_id, span_id=span_id, trace_state="a=b")
                    add_attributes(link.attributes, attributes)
    return request


_records = st.fixed_dictionaries(
    {
        "time": _times,
        "observed": _times,
        "severity": st.integers(min_value=0, max_value=24),
        "text": st.text(max_size=8),
        "body": _values,
        "attributes": _attribute_maps,
        "trace_id": _ids16,
        "span_id": _ids8,
        "event_name": st.text(max_size=8),
    }
)


@st.composite
def _log_requests(draw: st.DrawFn) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        resource_logs = request.resource_logs.add()
        add_attributes(resource_logs.resource.attributes, draw(_attribute_maps))
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            block = resource_logs.scope_logs.add()
            name, version, attributes = draw(_scopes)
            block.scope.name, block.scope.version = name, version
            add_attributes(block.scope.attributes, attributes)
            for spec in draw(st.lists(_records, max_size=3)):
                record = block.log_records.add(
                    time_unix_nano=spec["time"],
                    observed_time_unix_nano=spec["observed"],
                    severity_number=spec["severity"],
                    severity_text=spec["text"],
                    trace_id=spec["trace_id"],
                    span_id=spec["span_id"],
                    event_name=spec["event_name"],
                    flags=1,
                )
                fill(record.body, spec["body"])
                add_attributes(record.attributes, spec["attributes"])
    return request


_SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- the sink's full read


@_SETTINGS
@given(_trace_requests())
def test_every_span_field_matches_the_generated_classes(request: ExportTraceServiceRequest) -> None:
    expected = _expected_spans(request)
    assert _ours(read_traces(request.SerializeToString(), PROTOBUF)) == expected
    assert _ours(read_traces(_otlp_json(request), JSON)) == expected


@_SETTINGS
@given(_log_requests())
def test_every_log_field_matches_the_generated_classes(request: ExportLogsServiceRequest) -> None:
    expected = _expected_logs(request)
    assert _ours(read_logs(request.SerializeToString(), PROTOBUF)) == expected
    assert _ours(read_logs(_otlp_json(request), JSON)) == expected


def test_items_are_rejected_with_a_reason_naming_the_field() -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    spans.add(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)), name="ok")
    spans.add(trace_id=bytes(range(1, 17)), span_id=b"\x01\x02", name="short id")
    spans.add(trace_id=bytes(16), span_id=bytes(range(1, 9)), name="zero trace")
    spans.add(trace_id=bytes(range(1, 17)), span_id=bytes(range(1, 9)))
    errors = [item.error for item in read_traces(request.SerializeToString(), PROTOBUF)]
    assert errors == [
        None,
        "spanId is 2 bytes, not 8",
        "traceId is all zeros",
        "span has no name",
    ]
    json_errors = [item.error for item in read_traces(_otlp_json(request), JSON)]
    assert json_errors[0] is None and json_errors[3] == "span has no name"
    assert json_errors[1] == "spanId '0102' is not 16 hex digits"
    assert json_errors[2] == "traceId is all zeros"


# --------------------------------------------------------------------------- the bridge's lazy read


def _everything(*_: Any) -> bool:
    return True


@_SETTINGS
@given(_trace_requests())
def test_bridge_reads_protobuf_and_json_alike(request: ExportTraceServiceRequest) -> None:
    from_protobuf = decode_traces(request.SerializeToString(), PROTOBUF, _everything, 10_000)
    from_json = decode_traces(_otlp_json(request), JSON, _everything, 10_000)
    assert (from_protobuf.total, from_protobuf.rejected) == (from_json.total, from_json.rejected)
    assert from_protobuf.exception_events == from_json.exception_events
    full = [item for item in read_traces(request.SerializeToString(), PROTOBUF) if not item.error]
    assert len(from_protobuf.items) == len(from_json.items) == len(full)
    for ours, theirs, item in zip(from_protobuf.items, from_json.items, full, strict=True):
        assert ours.context == theirs.context
        assert format(ours.context.span_id, "016x") == item.value.span_id
        assert (ours.name, ours.kind, ours.parent) == (theirs.name, theirs.kind, theirs.parent)
        assert (ours.start_time, ours.end_time) == (theirs.start_time, theirs.end_time)
        assert ours.status == theirs.status
        assert ours.attributes == theirs.attributes == item.value.attributes
        assert ours.events == theirs.events
        assert ours.resource == theirs.resource
        assert ours.resource.attributes == item.resource


@_SETTINGS
@given(_log_requests())
def test_bridge_reads_protobuf_and_json_logs_alike(request: ExportLogsServiceRequest) -> None:
    from_protobuf = decode_logs(request.SerializeToString(), PROTOBUF, _everything, 10_000)
    from_json = decode_logs(_otlp_json(request), JSON, _everything, 10_000)
    assert (from_protobuf.total, from_protobuf.rejected) == (from_json.total, from_json.rejected)
    for ours, theirs in zip(from_protobuf.items, from_json.items, strict=True):
        assert (ours.timestamp, ours.severity_number, ours.severity_text) == (
            theirs.timestamp,
            theirs.severity_number,
            theirs.severity_text,
        )
        assert (ours.body, ours.attributes) == (theirs.body, theirs.attributes)
        assert (ours.trace_id, ours.span_id, ours.event_name) == (
            theirs.trace_id,
            theirs.span_id,
            theirs.event_name,
        )


def test_the_sink_reads_protobuf_without_the_generated_classes() -> None:
    """A plain install has no opentelemetry-proto: the sink's protobuf path must not need it."""
    import subprocess
    import sys

    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add(severity_text="WARN")
    record.body.string_value = "low stock"
    script = (
        "import sys, time\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith(('opentelemetry.proto', 'google.protobuf')):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from posthog_otel.sink.otlp import ingest_otlp\n"
        "answer = ingest_otlp(sys.stdin.buffer.read(), signal='logs', endpoint='/i/v1/logs',\n"
        "    headers={'content-type': 'application/x-protobuf', 'authorization': 'Bearer k'},\n"
        "    now=time.time())\n"
        "print(answer.status, answer.records[0].properties['body'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=request.SerializeToString(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["200", "low", "stock"]
