"""OTLP/HTTP logs and traces as PostHog serves them (``/i/v1/logs``, ``/i/v1/traces``).

Each log record and each span becomes one stored row (kind ``otlp_log`` / ``otlp_span``) with
its attributes, resource and scope. A row is linked to a person by the attributes PostHog reads
(``posthogDistinctId``, ``posthog.distinct_id``, ``user.id``; record first, then resource) and
to a session by ``sessionId``, ``session.id`` or ``posthog.session_id``.

Bodies are ``application/json`` (OTLP JSON: hex ids, integer enums, 64-bit integers as text or
numbers) or ``application/x-protobuf``, read by the same OTLP reader the bridge uses
(:mod:`posthog_otel.otlp.items`); gzip is accepted, and so are chunked bodies. As PostHog
does, the project token is required, as ``Authorization: Bearer <token>`` or as the query
parameter ``?token=<token>`` (posthog-node sends its logs that way). Answers follow OTLP/HTTP: 200
with an empty ``Export*ServiceResponse`` (or ``partial_success`` naming rejected items), 400 for
undecodable bodies, 401 without a token, 415 for other content types, in the request's
content type.

Usage::

    answer = ingest_otlp(body, signal="traces", endpoint="/i/v1/traces", headers=headers,
                         now=time.time(), query={"token": ["phc_..."]})
    store.insert(answer.records)
    respond(answer.status, answer.body, answer.content_type)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import exception_list_from_stacktrace, span_exception_handled
from ..otlp.items import Item, LogItem, SpanItem, read_logs, read_traces
from ..otlp.keys import PERSON_KEYS, SESSION_KEYS
from ..otlp.model import DecodeError
from ..otlp.responses import (
    INVALID_ARGUMENT,
    JSON,
    PROTOBUF,
    UNAUTHENTICATED,
    answer_type,
    export_response,
    status_body,
)
from .ingest import MAX_BODY_BYTES, gunzip_capped
from .records import KIND_OTLP_LOG, KIND_OTLP_SPAN, Record
from .validation import Rejection

__all__ = ["OtlpAnswer", "bearer_token", "ingest_otlp"]

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


def ingest_otlp(
    raw: bytes,
    *,
    signal: str,
    endpoint: str,
    headers: Mapping[str, str],
    now: float,
    query: Mapping[str, list[str]] | None = None,
) -> OtlpAnswer:
    """Decode, check and describe one OTLP export request. Never raises for bad input.

    ``headers`` are the request headers with lower-case names; ``query`` the URL's query
    parameters (for ``token``).
    """
    answer = answer_type(headers.get("content-type"))
    if answer is None:
        content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
        return _error(
            415, JSON, f"unsupported Content-Type {content_type!r}: use {JSON} or {PROTOBUF}"
        )
    token = bearer_token(headers.get("authorization")) or _query_token(query)
    try:
        items = _decode(raw, headers, answer, signal)
        records, rejected, first_error = _records(items, signal, endpoint, token, now)
    except Rejection as problem:
        record = Record(kind=_kind(signal), endpoint=endpoint, api_key=token, ts=now)
        record.raw = {"body": raw[:4096].decode("utf-8", errors="replace"), "bytes": len(raw)}
        record.reject(problem.code, problem.detail)
        failure = _error(problem.status, answer, problem.detail)
        failure.records = [record]
        return failure
    if token is None:
        detail = (
            "missing project token: send Authorization: Bearer <project API key> "
            "or ?token=<project API key>"
        )
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


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _query_token(query: Mapping[str, list[str]] | None) -> str | None:
    for value in (query or {}).get("token") or []:
        if value.strip():
            return value.strip()
    return None


def _decode(raw: bytes, headers: Mapping[str, str], kind: str, signal: str) -> list[Item]:
    if len(raw) > MAX_BODY_BYTES:
        raise Rejection("payload_too_large", f"body is over {MAX_BODY_BYTES} bytes", status=413)
    encoding = (headers.get("content-encoding") or "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        raw = gunzip_capped(raw)
    elif encoding not in ("", "identity"):
        raise Rejection("invalid_payload", f"unsupported Content-Encoding {encoding!r}", status=415)
    try:
        return read_logs(raw, kind) if signal == "logs" else read_traces(raw, kind)
    except DecodeError as exc:
        raise Rejection("invalid_payload", str(exc)) from None


def _records(
    items: list[Item], signal: str, endpoint: str, token: str | None, now: float
) -> tuple[list[Record], int, str | None]:
    records: list[Record] = []
    rejected = 0
    first_error: str | None = None
    for item in items:
        context = {
            "resource": item.resource,
            "scope": {"name": item.scope.name, "version": item.scope.version},
        }
        try:
            if item.error is not None:
                raise _BadItem(item.error)
            if isinstance(item.value, LogItem):
                record = _log_record(item.value, item.raw, context)
            else:
                record = _span_record(item.value, item.raw, context)
        except _BadItem as exc:
            record = Record(kind=_kind(signal), endpoint=endpoint, raw=item.raw, ts=now)
            record.reject(f"invalid_{'log_record' if signal == 'logs' else 'span'}", str(exc))
            rejected += 1
            first_error = first_error or str(exc)
        record.endpoint = endpoint
        record.api_key = token
        if record.ts is None:
            record.ts = now
        records.append(record)
    return records, rejected, first_error


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


def _log_record(log: LogItem, raw: Any, context: dict[str, Any]) -> Record:
    attributes = log.attributes
    nanos = log.time or log.observed_time
    record = Record(kind=KIND_OTLP_LOG, endpoint="", raw=raw)
    record.trace_id = log.trace_id
    record.span_id = log.span_id
    record.timestamp = _iso(nanos)
    record.ts = nanos / 1e9 if nanos > 0 else None
    resource = context["resource"]
    record.distinct_id = _first(PERSON_KEYS, attributes, resource)
    record.session_id = _first(SESSION_KEYS, attributes, resource)
    record.properties = {
        "body": log.body,
        "severity_text": log.severity_text or None,
        "severity_number": log.severity_number or None,
        "event_name": log.event_name or None,
        "attributes": attributes,
        "resource": resource,
        "scope": context["scope"],
    }
    return record


def _span_record(span: SpanItem, raw: Any, context: dict[str, Any]) -> Record:
    start, end = span.start_time, span.end_time
    record = Record(kind=KIND_OTLP_SPAN, endpoint="", raw=raw, event=span.name)
    record.trace_id = span.trace_id
    record.span_id = span.span_id
    record.timestamp = _iso(start)
    record.ts = start / 1e9 if start > 0 else None
    resource = context["resource"]
    record.distinct_id = _first(PERSON_KEYS, span.attributes, resource)
    record.session_id = _first(SESSION_KEYS, span.attributes, resource)
    record.properties = {
        "name": span.name,
        "kind": _SPAN_KINDS.get(span.kind, str(span.kind)),
        "parent_span_id": span.parent_span_id,
        "start_time": record.timestamp,
        "end_time": _iso(end),
        "duration_ms": round((end - start) / 1e6, 3) if end >= start > 0 else None,
        "status": {
            "code": _STATUS_CODES.get(span.status_code, str(span.status_code)),
            "message": span.status_message or None,
        },
        "attributes": span.attributes,
        "events": [
            _span_event(
                event.name,
                event.time,
                event.attributes,
                failed=_STATUS_CODES.get(span.status_code) == "ERROR",
            )
            for event in span.events
        ],
        "links": [
            {"trace_id": link.trace_id, "span_id": link.span_id, "attributes": link.attributes}
            for link in span.links
        ],
        "resource": resource,
        "scope": context["scope"],
    }
    return record


def _span_event(
    name: str, time_ns: int, attributes: dict[str, Any], *, failed: bool = False
) -> dict[str, Any]:
    """A stored span event; an ``exception`` event's stack text is parsed here, once, into
    ``exception_list`` (the event page shows that, never parsing text per view), handled or
    not by the one rule the bridge uses (``failed``: the span's status is ERROR)."""
    stored: dict[str, Any] = {"name": name or None, "time": _iso(time_ns), "attributes": attributes}
    if name == "exception":
        stacktrace = attributes.get("exception.stacktrace")
        exc_type = attributes.get("exception.type")
        message = attributes.get("exception.message")
        stored["exception_list"] = exception_list_from_stacktrace(
            stacktrace if isinstance(stacktrace, str) else "",
            exc_type=exc_type if isinstance(exc_type, str) else None,
            message=message if isinstance(message, str) else None,
            handled=span_exception_handled(attributes.get("exception.escaped"), span_failed=failed),
        )
    return stored


# --------------------------------------------------------------------------- answers


def _error(status: int, kind: str, message: str, code: int = INVALID_ARGUMENT) -> OtlpAnswer:
    return OtlpAnswer(status, status_body(code, message, kind), kind)
