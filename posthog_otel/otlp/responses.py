"""OTLP/HTTP pieces shared by the local sink and the bridge: content types, answers, JSON values.

Neither needs ``opentelemetry-proto``: the two small protobuf messages a receiver answers with
(``google.rpc.Status`` and ``Export*ServiceResponse``) are encoded here by hand, so a JSON-only
install can still answer protobuf clients correctly.

Usage::

    kind = answer_type(headers.get("content-type"))     # "application/x-protobuf" / JSON / None
    body = status_body(INVALID_ARGUMENT, "body is not valid gzip", kind)         # for a 400
    body = export_response("traces", kind, rejected=2, message="span has no name")  # for a 200
    value = json_any_value({"intValue": "42"})          # 42 (OTLP JSON AnyValue -> Python)
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "INVALID_ARGUMENT",
    "JSON",
    "PROTOBUF",
    "UNAUTHENTICATED",
    "answer_type",
    "export_response",
    "json_any_value",
    "json_attributes",
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

_MAX_JSON_DEPTH = 32  # nested arrayValue/kvlistValue levels kept; deeper values become None


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


# --------------------------------------------------------------------------- OTLP JSON values


def json_any_value(value: Any, depth: int = 0) -> Any:
    """An OTLP JSON ``AnyValue`` as plain Python (64-bit integers may arrive as text)."""
    if not isinstance(value, dict):
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError, OverflowError):
            return value["intValue"]
    if "doubleValue" in value:
        try:
            return float(value["doubleValue"])
        except (TypeError, ValueError):
            return value["doubleValue"]
    if depth >= _MAX_JSON_DEPTH:
        return None
    if "arrayValue" in value:
        inner = value["arrayValue"]
        items = inner.get("values") if isinstance(inner, dict) else None
        if not isinstance(items, list):
            return []
        return [json_any_value(v, depth + 1) for v in items if isinstance(v, dict)]
    if "kvlistValue" in value:
        inner = value["kvlistValue"]
        return json_attributes(inner.get("values") if isinstance(inner, dict) else None, depth + 1)
    if "bytesValue" in value:
        return value["bytesValue"]  # base64 text, as OTLP JSON writes it
    return None


def json_attributes(value: Any, depth: int = 0) -> dict[str, Any]:
    """An OTLP JSON ``KeyValue`` list as a dict (entries without a text key are skipped)."""
    if not isinstance(value, list):
        return {}
    return {
        item["key"]: json_any_value(item.get("value"), depth)
        for item in value
        if isinstance(item, dict) and isinstance(item.get("key"), str)
    }
