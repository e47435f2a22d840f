"""The bridge and the sink apply one set of rules: the same malformed items, the same reasons.

Each case is one span or log record, sent next to a valid one, in OTLP JSON and (where
protobuf can carry the fault) in protobuf: the bridge (``decode_*``, wanting everything) and
the sink (``read_*``) must reject exactly that item, with the same reason.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from posthog_otel.otlp.decode import decode_logs, decode_traces
from posthog_otel.otlp.items import read_logs, read_traces
from posthog_otel.otlp.responses import JSON, PROTOBUF

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"
GOOD_SPAN = {
    "traceId": TRACE,
    "spanId": SPAN,
    "name": "GET /",
    "kind": 2,
    "startTimeUnixNano": "1700000000000000000",
    "endTimeUnixNano": "1700000000250000000",
    "attributes": [{"key": "a", "value": {"stringValue": "b"}}],
    "events": [{"name": "exception", "timeUnixNano": "1700000000100000000"}],
    "status": {"code": 2, "message": "boom"},
}
GOOD_LOG = {
    "timeUnixNano": "1700000000000000000",
    "severityNumber": 17,
    "severityText": "ERROR",
    "body": {"stringValue": "failed"},
    "traceId": TRACE,
    "spanId": SPAN,
}

SPAN_CASES: list[tuple[dict[str, Any], str]] = [
    ({"traceId": ""}, "traceId is missing"),
    ({"traceId": "0" * 32}, "traceId is all zeros"),
    (
        {"traceId": "W4727/eAOBA9JptjOBP8YA=="},
        "traceId 'W4727/eAOBA9JptjOBP8YA==' is not 32 hex digits",
    ),
    ({"traceId": 12}, "traceId '12' is not 32 hex digits"),
    ({"spanId": "eee19b7ec3c1b17"}, "spanId 'eee19b7ec3c1b17' is not 16 hex digits"),
    ({"spanId": "0" * 16}, "spanId is all zeros"),
    ({"parentSpanId": "xyz"}, "parentSpanId 'xyz' is not 16 hex digits"),
    ({"name": ""}, "span has no name"),
    ({"name": None}, "span has no name"),
    ({"name": 5}, "name is not a string"),
    ({"startTimeUnixNano": "abc"}, "startTimeUnixNano 'abc' is not an integer"),
    ({"endTimeUnixNano": "1.5"}, "endTimeUnixNano '1.5' is not an integer"),
    ({"endTimeUnixNano": 1.5}, "endTimeUnixNano '1.5' is not an integer"),
    ({"startTimeUnixNano": "-1"}, "startTimeUnixNano -1 is out of range"),
    ({"startTimeUnixNano": str(1 << 64)}, f"startTimeUnixNano {1 << 64} is out of range"),
    ({"startTimeUnixNano": True}, "startTimeUnixNano 'True' is not an integer"),
    ({"kind": "SPAN_KIND_BOGUS"}, "kind 'SPAN_KIND_BOGUS' is neither a known name nor an integer"),
    ({"kind": [2]}, "kind '[2]' is neither a known name nor an integer"),
    ({"flags": "x"}, "flags 'x' is not an integer"),
    ({"status": "ERROR"}, "status is not an object"),
    ({"status": {"code": "bad"}}, "status.code 'bad' is neither a known name nor an integer"),
    ({"status": {"message": 3}}, "status.message is not a string"),
    ({"attributes": {"a": 1}}, "attributes is not a list"),
    ({"events": {}}, "events is not a list"),
    (
        {"events": [{"name": "x", "timeUnixNano": "soon"}]},
        "event timeUnixNano 'soon' is not an integer",
    ),
    ({"events": [{"name": 7}]}, "event name is not a string"),
    ({"links": "none"}, "links is not a list"),
]
LOG_CASES: list[tuple[dict[str, Any], str]] = [
    ({"traceId": "abc"}, "traceId 'abc' is not 32 hex digits"),
    ({"spanId": 1}, "spanId '1' is not 16 hex digits"),
    ({"timeUnixNano": "abc"}, "timeUnixNano 'abc' is not an integer"),
    ({"observedTimeUnixNano": -5}, "observedTimeUnixNano -5 is out of range"),
    ({"severityNumber": "LOUD"}, "severityNumber 'LOUD' is neither a known name nor an integer"),
    ({"severityText": 17}, "severityText is not a string"),
    ({"eventName": ["x"]}, "eventName is not a string"),
    ({"attributes": "a=b"}, "attributes is not a list"),
]


def _everything(*_: Any) -> bool:
    return True


def _json_body(top: str, middle: str, leaf: str, items: list[dict[str, Any]]) -> bytes:
    return json.dumps({top: [{middle: [{leaf: items}]}]}).encode()


def _agree(bridge: Any, sink: list[Any]) -> list[str | None]:
    """Both consumers' verdicts, item by item (None: accepted); they must be the same."""
    verdicts = [item.error for item in sink]
    assert bridge.total == len(sink)
    assert bridge.rejected == sum(error is not None for error in verdicts)
    assert bridge.first_error == next((error for error in verdicts if error), None)
    assert len(bridge.items) == verdicts.count(None)
    return verdicts


@pytest.mark.parametrize(("change", "reason"), SPAN_CASES)
def test_bridge_and_sink_reject_the_same_json_spans(change: dict[str, Any], reason: str) -> None:
    body = _json_body("resourceSpans", "scopeSpans", "spans", [GOOD_SPAN, {**GOOD_SPAN, **change}])
    verdicts = _agree(decode_traces(body, JSON, _everything), read_traces(body, JSON))
    assert verdicts == [None, reason]


@pytest.mark.parametrize(("change", "reason"), LOG_CASES)
def test_bridge_and_sink_reject_the_same_json_logs(change: dict[str, Any], reason: str) -> None:
    body = _json_body("resourceLogs", "scopeLogs", "logRecords", [GOOD_LOG, {**GOOD_LOG, **change}])
    verdicts = _agree(decode_logs(body, JSON, _everything), read_logs(body, JSON))
    assert verdicts == [None, reason]


WIRE_SPAN_CASES: list[tuple[dict[str, Any], str]] = [
    ({"trace_id": b""}, "traceId is missing"),
    ({"trace_id": b"short"}, "traceId is 5 bytes, not 16"),
    ({"trace_id": bytes(16)}, "traceId is all zeros"),
    ({"span_id": b"\x01\x02"}, "spanId is 2 bytes, not 8"),
    ({"span_id": bytes(8)}, "spanId is all zeros"),
    ({"parent_span_id": b"\x01\x02\x03"}, "parentSpanId is 3 bytes, not 8"),
    ({"name": ""}, "span has no name"),
]


@pytest.mark.parametrize(("change", "reason"), WIRE_SPAN_CASES)
@pytest.mark.parametrize("want", [_everything, lambda *_: False], ids=["all", "none"])
def test_bridge_and_sink_reject_the_same_protobuf_spans(
    change: dict[str, Any], reason: str, want: Any
) -> None:
    """Also when the bridge wants no span (its quick look must still count the rejections)."""
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    good = {"trace_id": bytes.fromhex(TRACE), "span_id": bytes.fromhex(SPAN), "name": "GET /"}
    spans.add(**good)
    spans.add(**{**good, **change})
    body = request.SerializeToString()
    bridge = decode_traces(body, PROTOBUF, want)
    verdicts = [item.error for item in read_traces(body, PROTOBUF)]
    assert verdicts == [None, reason]
    assert (bridge.total, bridge.rejected, bridge.first_error) == (2, 1, reason)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"trace_id": b"abc"}, "traceId is 3 bytes, not 16"),
        ({"span_id": b"\x01" * 9}, "spanId is 9 bytes, not 8"),
    ],
)
def test_bridge_and_sink_reject_the_same_protobuf_logs(change: dict[str, Any], reason: str) -> None:
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    records.add(severity_text="INFO")
    records.add(severity_text="INFO", **change)
    body = request.SerializeToString()
    verdicts = _agree(decode_logs(body, PROTOBUF, _everything), read_logs(body, PROTOBUF))
    assert verdicts == [None, reason]
