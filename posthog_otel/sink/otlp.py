"""OTLP/HTTP logs and traces as PostHog serves them (``/i/v1/logs``, ``/i/v1/traces``).

Each log record and each span becomes one stored row (kind ``otlp_log`` / ``otlp_span``) with
its attributes, resource and scope. A row is linked to a person by the attributes PostHog reads
(``posthogDistinctId``, ``posthog.distinct_id``, ``user.id``; record first, then resource) and
to a session by ``sessionId``, ``session.id`` or ``posthog.session_id``.

Bodies are ``application/json`` (OTLP JSON: hex ids, integer enums, 64-bit integers as text or
numbers) or, when the ``opentelemetry-proto`` package is installed (``pip install
'posthog-otel[sink]'``), ``application/x-protobuf``; gzip is accepted. As PostHog does, the
project token is required as ``Authorization: Bearer <token>``. Answers follow OTLP/HTTP: 200
with an empty ``Export*ServiceResponse`` (or ``partial_success`` naming rejected items), 400 for
undecodable bodies, 401 without a token, 415 for other content types, in the request's
content type.

Usage::

    answer = ingest_otlp(body, signal="traces", endpoint="/i/v1/traces", headers=headers,
                         now=time.time())
    store.insert(answer.records)
    respond(answer.status, answer.body, answer.content_type)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..otlp.responses import (
    INVALID_ARGUMENT,
    JSON,
    PROTOBUF,
    UNAUTHENTICATED,
    answer_type,
    export_response,
    json_any_value,
    json_attributes,
    status_body,
)
from .ingest import MAX_BODY_BYTES, gunzip_capped
from .records import KIND_OTLP_LOG, KIND_OTLP_SPAN, Record
from .validation import Rejection

__all__ = ["OtlpAnswer", "ingest_otlp", "protobuf_available"]

_PERSON_KEYS = ("posthogDistinctId", "posthog.distinct_id", "user.id")
_SESSION_KEYS = ("sessionId", "session.id", "posthog.session_id")
_SPAN_KINDS = {
    0: "UNSPECIFIED",
    1: "INTERNAL",
    2: "SERVER",
    3: "CLIENT",
    4: "PRODUCER",
    5: "CONSUMER",
}
_STATUS_CODES = {0: "UNSET", 1: "OK", 2: "ERROR"}


@dataclass
class OtlpAnswer:
    status: int
    body: bytes
    content_type: str
    records: list[Record] = field(default_factory=list)


class _BadItem(ValueError):
    """One log record or span that cannot be stored as valid (rejected individually)."""


def protobuf_available() -> bool:
    """True when ``opentelemetry-proto`` is importable (protobuf OTLP bodies are accepted)."""
    try:
        from . import _otlp_proto  # noqa: F401
    except ImportError:
        return False
    return True


def ingest_otlp(
    raw: bytes, *, signal: str, endpoint: str, headers: Mapping[str, str], now: float
) -> OtlpAnswer:
    """Decode, check and describe one OTLP export request. Never raises for bad input.

    ``headers`` are the request headers with lower-case names.
    """
    answer = answer_type(headers.get("content-type"))
    if answer is None:
        content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
        return _error(
            415, JSON, f"unsupported Content-Type {content_type!r}: use {JSON} or {PROTOBUF}"
        )
    token = _bearer(headers.get("authorization"))
    try:
        document = _decode(raw, headers, answer, signal)
        records, rejected, first_error = _records(document, signal, endpoint, token, now)
    except Rejection as problem:
        record = Record(kind=_kind(signal), endpoint=endpoint, api_key=token, ts=now)
        record.raw = {"body": raw[:4096].decode("utf-8", errors="replace"), "bytes": len(raw)}
        record.reject(problem.code, problem.detail)
        failure = _error(problem.status, answer, problem.detail)
        failure.records = [record]
        return failure
    if token is None:
        detail = "missing project token: send Authorization: Bearer <project API key>"
        for record in records:
            record.reject("missing_api_key", detail)
        refused = _error(401, answer, detail, code=UNAUTHENTICATED)
        refused.records = records
        return refused
    body = export_response(signal, answer, rejected, first_error or "")
    return OtlpAnswer(200, body, answer, records)


# --------------------------------------------------------------------------- decoding


def _kind(signal: str) -> str:
    return KIND_OTLP_LOG if signal == "logs" else KIND_OTLP_SPAN


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _decode(raw: bytes, headers: Mapping[str, str], kind: str, signal: str) -> Any:
    if len(raw) > MAX_BODY_BYTES:
        raise Rejection("payload_too_large", f"body is over {MAX_BODY_BYTES} bytes", status=413)
    encoding = (headers.get("content-encoding") or "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        raw = gunzip_capped(raw)
    elif encoding not in ("", "identity"):
        raise Rejection("invalid_payload", f"unsupported Content-Encoding {encoding!r}", status=415)
    if kind == PROTOBUF:
        try:
            from . import _otlp_proto
        except ImportError:
            raise Rejection(
                "unsupported_media_type",
                "protobuf OTLP needs the opentelemetry-proto package: "
                "pip install 'posthog-otel[sink]', or send application/json",
                status=415,
            ) from None
        return _otlp_proto.decode(signal, raw)
    try:
        document = json.loads(raw or b"{}")
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Rejection("invalid_payload", f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise Rejection("invalid_payload", "an OTLP JSON body must be an object")
    return document


def _records(
    document: Any, signal: str, endpoint: str, token: str | None, now: float
) -> tuple[list[Record], int, str | None]:
    top, middle, leaf = (
        ("resourceLogs", "scopeLogs", "logRecords")
        if signal == "logs"
        else ("resourceSpans", "scopeSpans", "spans")
    )
    build: Callable[[dict[str, Any], dict[str, Any]], Record] = (
        _log_record if signal == "logs" else _span_record
    )
    records: list[Record] = []
    rejected = 0
    first_error: str | None = None
    for resource_block in _list(document, top):
        resource = json_attributes(_dict(resource_block.get("resource")).get("attributes"))
        for scope_block in _list(resource_block, middle):
            scope = _dict(scope_block.get("scope"))
            context = {
                "resource": resource,
                "scope": {"name": scope.get("name"), "version": scope.get("version")},
            }
            for item in _list(scope_block, leaf):
                try:
                    record = build(item, context)
                except _BadItem as exc:
                    record = Record(kind=_kind(signal), endpoint=endpoint, raw=item, ts=now)
                    record.reject(
                        f"invalid_{'log_record' if signal == 'logs' else 'span'}", str(exc)
                    )
                    rejected += 1
                    first_error = first_error or str(exc)
                record.endpoint = endpoint
                record.api_key = token
                if record.ts is None:
                    record.ts = now
                records.append(record)
    return records, rejected, first_error


def _list(holder: Any, key: str) -> list[dict[str, Any]]:
    value = holder.get(key) if isinstance(holder, dict) else None
    if value is None:
        return []
    if not isinstance(value, list):
        raise Rejection("invalid_payload", f"{key} must be a list")
    return [item for item in value if isinstance(item, dict)]


def _items(value: Any) -> list[Any]:
    """The elements of a JSON list (dicts only when they are objects); [] for anything else."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _hex_id(value: Any, length: int, name: str, required: bool) -> str | None:
    if value in (None, ""):
        if required:
            raise _BadItem(f"{name} is missing")
        return None
    text = str(value).strip().lower()
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        raise _BadItem(f"{name} {str(value)[:64]!r} is not {length} hex digits")
    if text == "0" * length:
        if required:
            raise _BadItem(f"{name} is all zeros")
        return None
    return text


def _nanos(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise _BadItem(f"time {str(value)[:40]!r} is not an integer") from None


def _iso(nanos: int) -> str | None:
    if nanos <= 0:
        return None
    try:
        return datetime.fromtimestamp(nanos / 1e9, timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        raise _BadItem(f"time {nanos} is out of range") from None


def _first(keys: tuple[str, ...], *holders: dict[str, Any]) -> str | None:
    for holder in holders:
        for key in keys:
            value = holder.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
    return None


def _log_record(item: dict[str, Any], context: dict[str, Any]) -> Record:
    attributes = json_attributes(item.get("attributes"))
    nanos = _nanos(item.get("timeUnixNano")) or _nanos(item.get("observedTimeUnixNano"))
    record = Record(kind=KIND_OTLP_LOG, endpoint="", raw=item)
    record.trace_id = _hex_id(item.get("traceId"), 32, "traceId", required=False)
    record.span_id = _hex_id(item.get("spanId"), 16, "spanId", required=False)
    record.timestamp = _iso(nanos)
    record.ts = nanos / 1e9 if nanos > 0 else None
    resource = context["resource"]
    record.distinct_id = _first(_PERSON_KEYS, attributes, resource)
    record.session_id = _first(_SESSION_KEYS, attributes, resource)
    record.properties = {
        "body": json_any_value(item.get("body")),
        "severity_text": item.get("severityText") or None,
        "severity_number": item.get("severityNumber") or None,
        "event_name": item.get("eventName") or None,
        "attributes": attributes,
        "resource": resource,
        "scope": context["scope"],
    }
    return record


def _span_record(item: dict[str, Any], context: dict[str, Any]) -> Record:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise _BadItem("span has no name")
    attributes = json_attributes(item.get("attributes"))
    start = _nanos(item.get("startTimeUnixNano"))
    end = _nanos(item.get("endTimeUnixNano"))
    record = Record(kind=KIND_OTLP_SPAN, endpoint="", raw=item, event=name)
    record.trace_id = _hex_id(item.get("traceId"), 32, "traceId", required=True)
    record.span_id = _hex_id(item.get("spanId"), 16, "spanId", required=True)
    parent = _hex_id(item.get("parentSpanId"), 16, "parentSpanId", required=False)
    record.timestamp = _iso(start)
    record.ts = start / 1e9 if start > 0 else None
    resource = context["resource"]
    record.distinct_id = _first(_PERSON_KEYS, attributes, resource)
    record.session_id = _first(_SESSION_KEYS, attributes, resource)
    status = _dict(item.get("status"))
    record.properties = {
        "name": name,
        "kind": _SPAN_KINDS.get(_int(item.get("kind")), str(item.get("kind"))),
        "parent_span_id": parent,
        "start_time": record.timestamp,
        "end_time": _iso(end),
        "duration_ms": round((end - start) / 1e6, 3) if end >= start > 0 else None,
        "status": {
            "code": _STATUS_CODES.get(_int(status.get("code")), str(status.get("code"))),
            "message": status.get("message") or None,
        },
        "attributes": attributes,
        "events": [
            {
                "name": event.get("name"),
                "time": _iso(_nanos(event.get("timeUnixNano"))),
                "attributes": json_attributes(event.get("attributes")),
            }
            for event in _items(item.get("events"))
        ],
        "links": [
            {
                "trace_id": link.get("traceId"),
                "span_id": link.get("spanId"),
                "attributes": json_attributes(link.get("attributes")),
            }
            for link in _items(item.get("links"))
        ],
        "resource": resource,
        "scope": context["scope"],
    }
    return record


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return -1


# --------------------------------------------------------------------------- answers


def _error(status: int, kind: str, message: str, code: int = INVALID_ARGUMENT) -> OtlpAnswer:
    return OtlpAnswer(status, status_body(code, message, kind), kind)
