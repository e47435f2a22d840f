"""OTLP/HTTP pieces shared by the local sink and the bridge: content types and answers.

Neither needs ``opentelemetry-proto``: the two small protobuf messages a receiver answers with
(``google.rpc.Status`` and ``Export*ServiceResponse``) are encoded here by hand, so a JSON-only
install can still answer protobuf clients correctly.

Usage::

    kind = answer_type(headers.get("content-type"))     # "application/x-protobuf" / JSON / None
    body = status_body(INVALID_ARGUMENT, "body is not valid gzip", kind)         # for a 400
    body = export_response("traces", kind, rejected=2, message="span has no name")  # for a 200
"""

from __future__ import annotations

import json

__all__ = [
    "INVALID_ARGUMENT",
    "JSON",
    "PROTOBUF",
    "UNAUTHENTICATED",
    "answer_type",
    "export_response",
    "status_body",
]

JSON = "application/json"
PROTOBUF = "application/x-protobuf"

# google.rpc.Code values used in error answers
INVALID_ARGUMENT = 3
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
INTERNAL = 13
UNAVAILABLE = 14
UNAUTHENTICATED = 16


def answer_type(content_type: str | None) -> str | None:
    """The content type to answer in (exactly one of the two OTLP ones), or None when the
    request's type is not an OTLP one (answer 415)."""
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if base == JSON:
        return JSON
    return None


# --------------------------------------------------------------------------- answers


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def status_body(code: int, message: str, kind: str) -> bytes:
    """A ``google.rpc.Status`` (``code``, ``message``) in the answer's content type."""
    if kind == PROTOBUF:
        return b"\x08" + _varint(code) + _field_bytes(2, message.encode("utf-8"))
    return json.dumps({"code": code, "message": message}).encode()


def export_response(signal: str, kind: str, rejected: int = 0, message: str = "") -> bytes:
    """An ``Export{Trace,Logs}ServiceResponse``: empty, or with ``partial_success`` when
    ``rejected`` spans or log records were refused. ``signal`` is ``"traces"`` or ``"logs"``."""
    if kind == PROTOBUF:
        if not rejected and not message:
            return b""
        # ExportTracePartialSuccess / ExportLogsPartialSuccess: 1 rejected (int64), 2 message
        partial = b""
        if rejected:
            partial += b"\x08" + _varint(rejected)
        if message:
            partial += _field_bytes(2, message.encode("utf-8"))
        return _field_bytes(1, partial)
    if not rejected and not message:
        return b"{}"
    field = "rejectedLogRecords" if signal == "logs" else "rejectedSpans"
    return json.dumps({"partialSuccess": {field: rejected, "errorMessage": message}}).encode()
