"""The sink's OTLP/HTTP endpoints: JSON always, protobuf from the real OTLP exporters."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
import requests

from posthog_otel.sink import SinkServer
from tests.support.sink_helpers import KEY

BEARER = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"
PARENT = "eee19b7ec3c1b173"


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _logs(*records: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": [_attr("service.name", "checkout")]},
                "scopeLogs": [
                    {"scope": {"name": "app", "version": "1"}, "logRecords": list(records)}
                ],
            }
        ]
    }


def _spans(*spans: dict[str, Any], resource: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": resource or [_attr("service.name", "api")]},
                "scopeSpans": [{"scope": {"name": "flask"}, "spans": list(spans)}],
            }
        ]
    }


def _span(**overrides: Any) -> dict[str, Any]:
    span = {
        "traceId": TRACE,
        "spanId": SPAN,
        "parentSpanId": PARENT,
        "name": "GET /checkout",
        "kind": 2,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000250000000",
        "attributes": [
            _attr("posthog.distinct_id", "user-1"),
            _attr("session.id", "sess-1"),
            _attr("http.status_code", 500),
        ],
        "status": {"code": 2, "message": "boom"},
        "events": [
            {
                "name": "exception",
                "timeUnixNano": "1700000000200000000",
                "attributes": [
                    _attr("exception.type", "ValueError"),
                    _attr("exception.message", "bad total"),
                    _attr(
                        "exception.stacktrace",
                        'Traceback (most recent call last):\n  File "/srv/app/views.py", line 12, '
                        "in checkout\n    total = compute(cart)\nValueError: bad total\n",
                    ),
                ],
            }
        ],
    }
    span.update(overrides)
    return span


def test_json_logs_are_stored_linked_to_person_session_and_trace(posthog_sink: SinkServer) -> None:
    record = {
        "timeUnixNano": "1700000000000000000",
        "severityNumber": 9,
        "severityText": "INFO",
        "body": {"stringValue": "order placed"},
        "attributes": [
            _attr("posthogDistinctId", "user-1"),
            _attr("sessionId", "sess-1"),
            _attr("order.items", 3),
        ],
        "traceId": TRACE,
        "spanId": SPAN,
    }
    unlinked = {
        "observedTimeUnixNano": "1700000001000000000",
        "body": {"kvlistValue": {"values": [_attr("a", 1)]}},
    }
    response = requests.post(
        posthog_sink.url + "/i/v1/logs", json=_logs(record, unlinked), headers=BEARER, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {}
    first, second = posthog_sink.events(kind="otlp_log")
    assert first["distinct_id"] == "user-1"
    assert first["session_id"] == "sess-1"
    assert first["trace_id"] == TRACE and first["span_id"] == SPAN
    assert first["timestamp"] == "2023-11-14T22:13:20+00:00"
    props = first["properties"]
    assert props["body"] == "order placed"
    assert props["severity_text"] == "INFO"
    assert props["attributes"]["order.items"] == 3
    assert props["resource"] == {"service.name": "checkout"}
    assert props["scope"] == {"name": "app", "version": "1"}
    assert second["distinct_id"] is None
    assert second["properties"]["body"] == {"a": 1}


def test_json_spans_become_rows_with_timing_and_status(posthog_sink: SinkServer) -> None:
    data = gzip.compress(json.dumps(_spans(_span())).encode())
    response = requests.post(
        posthog_sink.url + "/i/v1/traces",
        data=data,
        headers={**BEARER, "Content-Encoding": "gzip"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    (span,) = posthog_sink.events(kind="otlp_span", trace_id=TRACE.upper())
    assert span["event"] == "GET /checkout"
    assert span["distinct_id"] == "user-1"
    assert span["session_id"] == "sess-1"
    assert span["span_id"] == SPAN
    props = span["properties"]
    assert props["kind"] == "SERVER"
    assert props["parent_span_id"] == PARENT
    assert props["duration_ms"] == 250.0
    assert props["status"] == {"code": "ERROR", "message": "boom"}
    assert props["events"][0]["attributes"]["exception.type"] == "ValueError"
    # the span page renders the recorded exception like an error tracker
    page = requests.get(f"{posthog_sink.url}/events/{span['id']}", timeout=10).text
    assert "Exceptions recorded on this span" in page
    assert "total = compute(cart)" in page


def test_person_from_resource_attributes(posthog_sink: SinkServer) -> None:
    span = _span(attributes=[])
    body = _spans(span, resource=[_attr("user.id", "from-resource")])
    assert requests.post(
        posthog_sink.url + "/i/v1/traces", json=body, headers=BEARER, timeout=10
    ).ok
    assert posthog_sink.events(kind="otlp_span")[0]["distinct_id"] == "from-resource"


def test_without_a_bearer_token_everything_is_refused_and_kept(posthog_sink: SinkServer) -> None:
    response = requests.post(
        posthog_sink.url + "/i/v1/traces",
        json=_spans(_span()),
        headers={"Authorization": "Basic x"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["code"] == 16
    assert posthog_sink.events() == []
    (row,) = posthog_sink.rejected()
    assert row["code"] == "missing_api_key"
    assert row["event"] == "GET /checkout"


def test_a_bad_span_is_a_partial_success(posthog_sink: SinkServer) -> None:
    body = _spans(_span(), _span(spanId="xyz", name="broken"), _span(traceId="", name="no trace"))
    response = requests.post(
        posthog_sink.url + "/i/v1/traces", json=body, headers=BEARER, timeout=10
    )
    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == 2
    assert "spanId" in partial["errorMessage"]
    assert [row["event"] for row in posthog_sink.events()] == ["GET /checkout"]
    assert {row["code"] for row in posthog_sink.rejected()} == {"invalid_span"}


@pytest.mark.parametrize(
    ("data", "headers", "status"),
    [
        (b"{nope", BEARER, 400),
        (b'{"resourceSpans": {}}', BEARER, 400),
        (b"[]", BEARER, 400),
        (b"{}", {**BEARER, "Content-Type": "text/plain"}, 415),
    ],
    ids=["not_json", "not_a_list", "not_an_object", "content_type"],
)
def test_undecodable_otlp_bodies(
    posthog_sink: SinkServer, data: bytes, headers: dict[str, str], status: int
) -> None:
    response = requests.post(
        posthog_sink.url + "/i/v1/traces", data=data, headers=headers, timeout=10
    )
    assert response.status_code == status
    assert response.json()["message"]


def test_real_otlp_protobuf_exporters(posthog_sink: SinkServer) -> None:
    """The OpenTelemetry SDK's own OTLP/HTTP exporters (protobuf, gzip) deliver to the sink."""
    pytest.importorskip("opentelemetry.proto")
    exporter_module = pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = exporter_module.OTLPSpanExporter(
        endpoint=posthog_sink.url + "/i/v1/traces",
        headers={"Authorization": f"Bearer {KEY}"},
        compression=Compression.Gzip,
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("parent", attributes={"posthogDistinctId": "u-9"}) as parent,
        tracer.start_as_current_span("child", attributes={"sessionId": "s-9", "n": 1.5}),
    ):
        pass
    provider.shutdown()
    rows = {row["event"]: row for row in posthog_sink.events(kind="otlp_span")}
    context = parent.get_span_context()
    assert rows["parent"]["trace_id"] == format(context.trace_id, "032x")
    assert rows["parent"]["span_id"] == format(context.span_id, "016x")
    assert rows["parent"]["distinct_id"] == "u-9"
    assert rows["child"]["session_id"] == "s-9"
    assert rows["child"]["properties"]["parent_span_id"] == format(context.span_id, "016x")
    assert rows["child"]["properties"]["attributes"]["n"] == 1.5
    assert rows["child"]["properties"]["resource"]["service.name"] == "shop"
    assert rows["child"]["properties"]["kind"] == "INTERNAL"


def test_real_otlp_protobuf_logs_and_bad_protobuf(posthog_sink: SinkServer) -> None:
    pytest.importorskip("opentelemetry.proto")
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

    record = LogRecord(
        time_unix_nano=1_700_000_000_000_000_000,
        severity_text="WARN",
        body=AnyValue(string_value="low stock"),
        attributes=[KeyValue(key="posthogDistinctId", value=AnyValue(string_value="u-1"))],
        trace_id=bytes.fromhex(TRACE),
        span_id=bytes.fromhex(SPAN),
    )
    message = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=[record])])]
    )
    proto = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/x-protobuf"}
    response = requests.post(
        posthog_sink.url + "/i/v1/logs", data=message.SerializeToString(), headers=proto, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-protobuf"
    assert not ExportLogsServiceResponse.FromString(response.content).HasField("partial_success")
    (row,) = posthog_sink.events(kind="otlp_log")
    assert row["trace_id"] == TRACE and row["span_id"] == SPAN
    assert row["distinct_id"] == "u-1"
    assert row["properties"]["body"] == "low stock"

    broken = requests.post(
        posthog_sink.url + "/i/v1/logs", data=b"\xff\xff\xff", headers=proto, timeout=10
    )
    assert broken.status_code == 400
    assert broken.headers["Content-Type"] == "application/x-protobuf"
    assert broken.content[:1] == b"\x08"  # google.rpc.Status: field 1 (code) first


def test_exception_stack_text_is_parsed_once_at_ingest(posthog_sink: SinkServer) -> None:
    response = requests.post(
        posthog_sink.url + "/i/v1/traces",
        data=json.dumps(_spans(_span())),
        headers=BEARER,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    (span,) = posthog_sink.events(kind="otlp_span", trace_id=TRACE.upper())
    (stored,) = span["properties"]["events"][0]["exception_list"]  # stored with the row
    assert stored["type"] == "ValueError" and stored["value"] == "bad total"
    assert stored["stacktrace"]["frames"], stored
    page = requests.get(f"{posthog_sink.url}/events/{span['id']}", timeout=10).text
    assert "total = compute(cart)" in page
