"""Every field of every span or log record of an OTLP export request, for the local sink.

Where the bridge (:mod:`.decode`) reads lazily only what its mapping needs, the sink stores
everything: all attributes (no limit), resource and scope, ids as hex, times, status, events,
links, log bodies and severities. Both read protobuf with the same wire reader
(:mod:`._wire_traces`, :mod:`._wire_logs`) and OTLP JSON with the same helpers
(:mod:`.json_format`), so the two cannot disagree about what a payload says.

Each item comes back with the resource and scope it was sent under, what was sent for it
(``raw``: the JSON object, or for protobuf the fields as read), and either its value or why it
was rejected. The walk over the request, the readers of each item (:mod:`.json_items` for
JSON) and the rules (:mod:`.rules`) are the bridge's, so both reject the same items with the
same reason. A body that is not an export request at all raises
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
from ._wire_traces import event_in, export_items, links_in, scope_in, span_head, status_in
from .json_format import json_attributes, json_dict, json_document
from .json_items import LOGS, SPANS, json_export_items, json_log, json_span
from .model import DecodeError
from .responses import PROTOBUF
from .rules import Rejected, link_id, log_problem, span_problem

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


def read_traces(body: bytes | bytearray, content_type: str) -> list[Item]:
    """Every span of an ``ExportTraceServiceRequest``."""
    if content_type == PROTOBUF:
        return _protobuf(bytes(body), _wire_span, "trace")
    return _json(json_document(body), SPANS, _json_span)


def read_logs(body: bytes | bytearray, content_type: str) -> list[Item]:
    """Every log record of an ``ExportLogsServiceRequest``."""
    if content_type == PROTOBUF:
        return _protobuf(bytes(body), _wire_log, "logs")
    return _json(json_document(body), LOGS, _json_log)


# --------------------------------------------------------------------------- protobuf

_WireReader = Callable[[bytes, int, int], tuple[dict[str, Any], Callable[[], Any]]]


def _protobuf(data: bytes, read: _WireReader, signal: str) -> list[Item]:
    try:
        return list(_wire_items(data, read))
    except _READ_ERRORS as exc:
        raise DecodeError(f"body is not a valid OTLP {signal} protobuf message: {exc}") from None


def _wire_items(data: bytes, read: _WireReader) -> Iterator[Item]:
    resources: dict[tuple[int, int] | None, dict[str, Any]] = {}
    scopes: dict[tuple[int, int], Scope] = {}
    for where, block, start, end in export_items(data):
        resource = resources.get(where)
        if resource is None:
            resource = resources[where] = (
                attributes_in(data, where[0], where[1], _ALL, tag=0x0A) if where else {}
            )
        scope = scopes.get(block)
        if scope is None:
            name, version = scope_in(data, block, _ALL)[:2]
            scope = scopes[block] = Scope(name or None, version or None)
        raw, build = read(data, start, end)
        yield _item(resource, scope, raw, build)


def _item(resource: dict[str, Any], scope: Scope, raw: Any, build: Callable[[], Any]) -> Item:
    try:
        return Item(resource, scope, raw, build(), None)
    except Rejected as problem:
        return Item(resource, scope, raw, None, str(problem))


def _hex(value: bytes) -> str | None:
    """A checked id as hex; None when absent or all zeros."""
    return value.hex() if any(value) else None


def _wire_span(data: bytes, start: int, end: int) -> tuple[dict[str, Any], Callable[[], Any]]:
    head = span_head(data, start, end, _ALL)
    code, message = status_in(data, *head.status) if head.status else (0, "")
    events = tuple(EventItem(*event_in(data, begin, stop, _ALL)) for begin, stop in head.events)
    links = tuple(
        LinkItem(link_id(trace, 16), link_id(span, 8), attributes)
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
        problem = span_problem(head.trace_id, head.span_id, head.parent_span_id, head.name)
        if problem is not None:
            raise Rejected(problem)
        return SpanItem(
            head.trace_id.hex(),
            head.span_id.hex(),
            _hex(head.parent_span_id),
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
        problem = log_problem(head.trace_id, head.span_id)
        if problem is not None:
            raise Rejected(problem)
        return LogItem(
            head.time,
            head.observed_time,
            head.severity_number,
            head.severity_text,
            body,
            attributes,
            _hex(head.trace_id),
            _hex(head.span_id),
            head.event_name,
        )

    return raw, build


# --------------------------------------------------------------------------- OTLP JSON


def _json(
    document: dict[str, Any],
    path: tuple[str, str, str],
    build: Callable[[dict[str, Any]], Any],
) -> list[Item]:
    resources: dict[int, dict[str, Any]] = {}
    scopes: dict[int, Scope] = {}
    items = []
    for resource_block, scope_block, item in json_export_items(document, path):
        resource = resources.get(id(resource_block))
        if resource is None:
            attributes = json_dict(resource_block.get("resource")).get("attributes")
            resource = resources[id(resource_block)] = json_attributes(attributes)
        scope = scopes.get(id(scope_block))
        if scope is None:
            scope_object = json_dict(scope_block.get("scope"))
            scope = scopes[id(scope_block)] = Scope(
                _text(scope_object.get("name")), _text(scope_object.get("version"))
            )
        items.append(_item(resource, scope, item, partial(build, item)))
    return items


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json_span(item: dict[str, Any]) -> SpanItem:
    span = json_span(item)
    return SpanItem(
        span.trace_id.hex(),
        span.span_id.hex(),
        _hex(span.parent_span_id),
        span.name,
        span.kind,
        span.start_time,
        span.end_time,
        span.status_code,
        span.status_message,
        json_attributes(span.attributes),
        tuple(
            EventItem(event.name, event.time, json_attributes(event.attributes))
            for event in span.events
        ),
        tuple(
            LinkItem(link_id(trace, 16), link_id(span_id, 8), json_attributes(attributes))
            for trace, span_id, attributes in span.links
        ),
    )


def _json_log(item: dict[str, Any]) -> LogItem:
    record = json_log(item)
    return LogItem(
        record.time,
        record.observed_time,
        record.severity_number,
        record.severity_text,
        record.body,
        json_attributes(record.attributes),
        _hex(record.trace_id),
        _hex(record.span_id),
        record.event_name,
    )
