"""OTLP/HTTP pieces shared by the local sink and the bridge: content types and answers.

Neither needs ``opentelemetry-proto``: the two small protobuf messages a receiver answers with
(``google.rpc.Status`` and ``Export*ServiceResponse``) are encoded here by hand, so a JSON-only
install can still answer protobuf clients correctly.

Usage::

    kind = answer_type(headers.get("content-type"))     # "application/x-protobuf" / JSON / None
    body = status_body(INVALID_ARGUMENT, "body is not valid gzip", kind)         # for a 400
    body = export_response("traces", kind, rejected=2, message="span has no name")  # for a 200
    read_export_response(body)        # (2, "span has no name"): what an exporter counts
"""

from __future__ import annotations

import json

from ._wire import WireError, skip, varint

__all__ = [
    "INVALID_ARGUMENT",
    "JSON",
    "PROTOBUF",
    "UNAUTHENTICATED",
    "answer_type",
    "export_response",
    "read_export_response",
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


def read_export_response(body: bytes) -> tuple[int, str]:
    """(rejected items, error message) of a 2xx answer's ``partial_success`` (protobuf or JSON).

    The traces, logs and metrics responses share the layout: field 1 ``partial_success``
    {1: ``rejected_spans``/``rejected_log_records``/``rejected_data_points``, 2:
    ``error_message``}. An empty or unreadable answer is (0, "")."""
    if not body:
        return 0, ""
    try:
        if body.lstrip()[:1] == b"{":
            partial = json.loads(body).get("partialSuccess") or {}
            rejected = next((partial[k] for k in partial if str(k).startswith("rejected")), 0)
            return max(0, int(rejected)), str(partial.get("errorMessage") or "")
        found = _message_field(body, 0, len(body), 0x0A)
        if found is None:
            return 0, ""
        start, stop = found
        count, message = 0, ""
        pos = start
        while pos < stop:
            tag, pos = varint(body, pos)
            if tag == 0x08:
                count, pos = varint(body, pos)
            elif tag == 0x12:
                size, pos = varint(body, pos)
                message = body[pos : pos + size].decode("utf-8", "replace")
                pos += size
            else:
                pos = skip(body, pos, tag, stop)
        return (count if count < 1 << 63 else 0), message  # int64: negative is no count
    except (WireError, IndexError, ValueError, TypeError, AttributeError, RecursionError):
        return 0, ""


def _message_field(data: bytes, pos: int, end: int, wanted: int) -> tuple[int, int] | None:
    found = None
    while pos < end:
        tag, pos = varint(data, pos)
        if tag == wanted:
            size, pos = varint(data, pos)
            found = (pos, pos + size)
            pos += size
        else:
            pos = skip(data, pos, tag, end)
    if pos != end:
        raise WireError("message runs past its end")
    return found
