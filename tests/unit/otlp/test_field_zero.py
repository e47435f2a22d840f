"""Protobuf field number 0 is malformed wherever it appears (as the generated classes say)."""

from __future__ import annotations

import pytest
from google.protobuf.message import DecodeError as ProtobufDecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from posthog_otel.otlp.decode import DecodeError, decode_traces
from posthog_otel.otlp.responses import PROTOBUF


def _len(tag: int, payload: bytes) -> bytes:
    size = len(payload)
    out = bytearray([tag])
    while size > 0x7F:
        out.append(size & 0x7F | 0x80)
        size >>= 7
    out.append(size)
    return bytes(out) + payload


def _request(span: bytes, top_extra: bytes = b"") -> bytes:
    scope_spans = _len(0x12, span)  # ScopeSpans.spans = 2
    resource_spans = _len(0x12, scope_spans)  # ResourceSpans.scope_spans = 2
    return top_extra + _len(0x0A, resource_spans)  # resource_spans = 1


def _span() -> bytes:
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="GET /", kind=2)
    return span.SerializeToString()


def _want(*_: object) -> bool:
    return True


def test_a_well_formed_request_decodes() -> None:
    body = _request(_span())
    ExportTraceServiceRequest.FromString(body)
    assert len(decode_traces(body, PROTOBUF, _want).items) == 1


@pytest.mark.parametrize(
    ("where", "body"),
    [
        ("top level, varint", _request(_span(), top_extra=b"\x00\x01")),
        ("top level, two-byte tag", _request(_span(), top_extra=b"\x80\x00\x01")),
        ("in a span, varint", _request(_span() + b"\x00\x05")),
        ("in a span, length-delimited", _request(_span() + b"\x02\x01x")),
        ("in a span, two-byte length-delimited tag", _request(_span() + b"\x82\x00\x01x")),
    ],
)
def test_field_number_zero_is_malformed(where: str, body: bytes) -> None:
    with pytest.raises(ProtobufDecodeError):
        ExportTraceServiceRequest.FromString(body)
    with pytest.raises(DecodeError, match="field number 0"):
        decode_traces(body, PROTOBUF, _want)
