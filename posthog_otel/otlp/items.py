"""Every field of every span or log record of an OTLP export request, for the local sink.

Where the bridge (:mod:`.decode`) reads lazily only what its mapping needs, the sink stores
everything: all attributes (no limit), resource and scope, ids as hex, times, status, events,
links, log bodies and severities. Both read protobuf with the same wire reader
(:mod:`._wire_traces`, :mod:`._wire_logs`) and OTLP JSON with the same helpers
(:mod:`.json_format`), so the two cannot disagree about what a payload says.

Each item comes back with the resource and scope it was sent under, what was sent for it
(``raw``: the JSON object, or for protobuf the fields as read), and either its value or why it
was rejected (spans need a name and non-zero trace and span ids; ids must be well formed;
times must be integers). A body that is not an export request at all raises
:class:`~.model.DecodeError`.

Usage::

    for item in read_traces(body, "application/x-protobuf"):
        if item.error: reject(item.raw, item.error)
        else: store(item.value.name, item.value.attributes, item.resource, item.scope)
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, NamedTuple

from ._wire import WireError, any_value, attributes_in
from ._wire_logs import LOG_ATTRIBUTES, log_head
from ._wire_traces import event_in, links_in, scope_in, scoped_items, span_head, status_in
from .json_format import (
    KIND_NAMES,
    SEVERITY_NAMES,
    STATUS_NAMES,
    json_any_value,
    json_attributes,
    json_dict,
    json_document,
    json_enum,
    json_id,
    json_int,
    json_list,
)
from .model import DecodeError
from .responses import PROTOBUF

__all__ = [
    "EventItem",
    "Item",
    "LinkItem",
    "LogItem",
    "Scope",
    "SpanItem",
    "read_logs",
    "read_traces",
]

_ALL = 1 << 62  # no attribute limit
_NOT_AN_INT = -(1 << 80)
_READ_ERRORS = (WireError, IndexError, struct.error, RecursionError)


class Scope(NamedTuple):
    name: str | None
    version: str | None


class EventItem(NamedTuple):
    name: str
    time: int
    attributes: dict[str, Any]


class LinkItem(NamedTuple):
    trace_id: str | None
    span_id: str | None
    attributes: dict[str, Any]


class SpanItem(NamedTuple):
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_time: int
    end_time: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    events: tuple[EventItem, ...]
    links: tuple[LinkItem, ...]


class LogItem(NamedTuple):
    time: int
    observed_time: int
    severity_number: int
    severity_text: str
    body: Any
    attributes: dict[str, Any]
    trace_id: str | None
    span_id: str | None
    event_name: str


class Item(NamedTuple):
    """One span or log record: its value, or why it was rejected."""

    resource: dict[str, Any]
    scope: Scope
    raw: Any
    value: Any  # SpanItem / LogItem, None when rejected
    error: str | None


class _Rejected(ValueError):
    """One item that is not valid (rejected alone)."""


def read_traces(body: bytes | bytearray, content_type: str) -> list[Item]:
    """Every span of an ``ExportTraceServiceRequest``."""
    if content_type == PROTOBUF:
        return _protobuf(bytes(body), _wire_span, "trace")
    return _json(json_document(body), ("resourceSpans", "scopeSpans", "spans"), _json_span)


def read_logs(body: bytes | bytearray, content_type: str) -> list[Item]:
    """Every log record of an ``ExportLogsServiceRequest``."""
    if content_type == PROTOBUF:
        return _protobuf(bytes(body), _wire_log, "logs")
    return _json(json_document(body), ("resourceLogs", "scopeLogs", "logRecords"), _json_log)


# --------------------------------------------------------------------------- protobuf

_WireReader = Callable[[bytes, int, int], tuple[dict[str, Any], Callable[[], Any]]]


def _protobuf(data: bytes, read: _WireReader, signal: str) -> list[Item]:
    try:
        return list(_wire_items(data, read))
    except _READ_ERRORS as exc:
        raise DecodeError(f"body is not a valid OTLP {signal} protobuf message: {exc}") from None


def _wire_items(data: bytes, read: _WireReader) -> Iterator[Item]:
    resources: dict[tuple[int, int] | None, dict[str, Any]] = {}
    scopes: dict[tuple[int, int] | None, Scope] = {}
    for where, scope_at, start, end in scoped_items(data):
        resource = resources.get(where)
        if resource is None:
            resource = resources[where] = (
                attributes_in(data, where[0], where[1], _ALL, tag=0x0A) if where else {}
            )
        scope = scopes.get(scope_at)
        if scope is None:
            name, version = scope_in(data, *scope_at, _ALL)[:2] if scope_at else ("", "")
            scope = scopes[scope_at] = Scope(name or None, version or None)
        raw, build = read(data, start, end)
        yield _item(resource, scope, raw, build)


def _item(resource: dict[str, Any], scope: Scope, raw: Any, build: Callable[[], Any]) -> Item:
    try:
        return Item(resource, scope, raw, build(), None)
    except _Rejected as problem:
        return Item(resource, scope, raw, None, str(problem))


def _wire_id(value: bytes, size: int, name: str, required: bool) -> str | None:
    if not value:
        if required:
            raise _Rejected(f"{name} is missing")
        return None
    if len(value) != size:
        raise _Rejected(f"{name} is {len(value)} bytes, not {size}")
    if not any(value):
        if required:
            raise _Rejected(f"{name} is all zeros")
        return None
    return value.hex()


def _wire_link_id(value: bytes, size: int) -> str | None:
    """A link's id as hex; None when absent, all zeros or malformed (links are not checked)."""
    return value.hex() if len(value) == size and any(value) else None


def _wire_span(data: bytes, start: int, end: int) -> tuple[dict[str, Any], Callable[[], Any]]:
    head = span_head(data, start, end, _ALL)
    code, message = status_in(data, *head.status) if head.status else (0, "")
    events = tuple(EventItem(*event_in(data, begin, stop, _ALL)) for begin, stop in head.events)
    links = tuple(
        LinkItem(_wire_link_id(trace, 16), _wire_link_id(span, 8), attributes)
        for trace, span, attributes in links_in(data, start, end, _ALL)
    )
    raw = {
        "traceId": head.trace_id.hex(),
        "spanId": head.span_id.hex(),
        "parentSpanId": head.parent_span_id.hex(),
        "name": head.name,
        "kind": head.kind,
        "startTimeUnixNano": str(head.start_time),
        "endTimeUnixNano": str(head.end_time),
        "attributes": head.attributes,
        "status": {"code": code, "message": message},
        "events": [event._asdict() for event in events],
        "links": [link._asdict() for link in links],
    }

    def build() -> SpanItem:
        if not head.name:
            raise _Rejected("span has no name")
        return SpanItem(
            _wire_id(head.trace_id, 16, "traceId", required=True) or "",
            _wire_id(head.span_id, 8, "spanId", required=True) or "",
            _wire_id(head.parent_span_id, 8, "parentSpanId", required=False),
            head.name,
            head.kind,
            head.start_time,
            head.end_time,
            code,
            message,
            head.attributes,
            events,
            links,
        )

    return raw, build


def _wire_log(data: bytes, start: int, end: int) -> tuple[dict[str, Any], Callable[[], Any]]:
    head = log_head(data, start, end)
    body = any_value(data, *head.body) if head.body else None
    attributes = attributes_in(data, start, end, _ALL, tag=LOG_ATTRIBUTES)
    raw = {
        "timeUnixNano": str(head.time),
        "observedTimeUnixNano": str(head.observed_time),
        "severityNumber": head.severity_number,
        "severityText": head.severity_text,
        "body": body,
        "attributes": attributes,
        "traceId": head.trace_id.hex(),
        "spanId": head.span_id.hex(),
        "eventName": head.event_name,
    }

    def build() -> LogItem:
        return LogItem(
            head.time,
            head.observed_time,
            head.severity_number,
            head.severity_text,
            body,
            attributes,
            _wire_id(head.trace_id, 16, "traceId", required=False),
            _wire_id(head.span_id, 8, "spanId", required=False),
            head.event_name,
        )

    return raw, build


# --------------------------------------------------------------------------- OTLP JSON


def _json(
    document: dict[str, Any],
    path: tuple[str, str, str],
    build: Callable[[dict[str, Any]], Any],
) -> list[Item]:
    top, middle, leaf = path
    items = []
    for block in json_list(document, top):
        resource = json_attributes(json_dict(block.get("resource")).get("attributes"))
        for scope_block in json_list(block, middle):
            scope_object = json_dict(scope_block.get("scope"))
            scope = Scope(_text(scope_object.get("name")), _text(scope_object.get("version")))
            for item in json_list(scope_block, leaf):
                items.append(_item(resource, scope, item, partial(build, item)))
    return items


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json_id(value: Any, digits: int, name: str, required: bool) -> str | None:
    number = json_id(value, digits)
    if number is None:
        raise _Rejected(f"{name} {str(value)[:64]!r} is not {digits} hex digits")
    if not number:
        if required:
            raise _Rejected(f"{name} is missing" if value in (None, "") else f"{name} is all zeros")
        return None
    return format(number, f"0{digits}x")


def _json_link_id(value: Any, digits: int) -> str | None:
    number = json_id(value, digits)
    return format(number, f"0{digits}x") if number else None


def _json_time(value: Any) -> int:
    if value is None or value == "":
        return 0
    number = json_int(value, _NOT_AN_INT)
    if number == _NOT_AN_INT:
        raise _Rejected(f"time {str(value)[:40]!r} is not an integer")
    return number


def _json_span(item: dict[str, Any]) -> SpanItem:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise _Rejected("span has no name")
    start = _json_time(item.get("startTimeUnixNano"))
    end = _json_time(item.get("endTimeUnixNano"))
    status = json_dict(item.get("status"))
    message = status.get("message")
    return SpanItem(
        _json_id(item.get("traceId"), 32, "traceId", required=True) or "",
        _json_id(item.get("spanId"), 16, "spanId", required=True) or "",
        _json_id(item.get("parentSpanId"), 16, "parentSpanId", required=False),
        name,
        json_enum(item.get("kind"), KIND_NAMES),
        start,
        end,
        json_enum(status.get("code"), STATUS_NAMES),
        message if isinstance(message, str) else "",
        json_attributes(item.get("attributes")),
        tuple(
            EventItem(
                _text(event.get("name")) or "",
                _json_time(event.get("timeUnixNano")),
                json_attributes(event.get("attributes")),
            )
            for event in _objects(item.get("events"))
        ),
        tuple(
            LinkItem(
                _json_link_id(link.get("traceId"), 32),
                _json_link_id(link.get("spanId"), 16),
                json_attributes(link.get("attributes")),
            )
            for link in _objects(item.get("links"))
        ),
    )


def _json_log(item: dict[str, Any]) -> LogItem:
    return LogItem(
        _json_time(item.get("timeUnixNano")),
        _json_time(item.get("observedTimeUnixNano")),
        json_enum(item.get("severityNumber"), SEVERITY_NAMES),
        _text(item.get("severityText")) or "",
        json_any_value(item.get("body")),
        json_attributes(item.get("attributes")),
        _json_id(item.get("traceId"), 32, "traceId", required=False),
        _json_id(item.get("spanId"), 16, "spanId", required=False),
        _text(item.get("eventName")) or "",
    )


def _objects(value: Any) -> list[dict[str, Any]]:
    """The objects in a JSON list nested in an item; [] for anything else."""
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []
