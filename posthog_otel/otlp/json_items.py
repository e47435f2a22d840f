"""OTLP JSON export requests: the walk and each item's fields, checked by :mod:`.rules`.

The counterpart of :mod:`._wire_traces` / :mod:`._wire_logs` for JSON, used by the bridge
(:mod:`.decode`) and the sink (:mod:`.items`) alike. :func:`json_export_items` walks
resource -> scope block -> item; :func:`json_span` and :func:`json_log` read an item's fields
or raise :class:`~.rules.Rejected` with the reason. Attribute lists are only type-checked
here: each consumer decodes them as it needs (the bridge up to its limit, the sink all).

Usage::

    for resource_block, scope_block, item in json_export_items(document, SPANS):
        try:
            span = json_span(item)          # ids as bytes, times, kind, status, events
        except Rejected as problem:
            reject(str(problem))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from .json_format import json_any_value, json_list
from .rules import (
    KIND_NAMES,
    LOG_SPAN_ID,
    LOG_TRACE_ID,
    PARENT_SPAN_ID,
    SEVERITY_NAMES,
    SPAN_ID,
    STATUS_NAMES,
    TRACE_ID,
    Rejected,
    json_array,
    json_enum,
    json_hex_id,
    json_link_id,
    json_object,
    json_text,
    json_uint,
    log_problem,
    span_problem,
)

__all__ = ["LOGS", "SPANS", "JsonLog", "JsonSpan", "json_export_items", "json_log", "json_span"]

#: The keys of the three nested lists of each request.
SPANS = ("resourceSpans", "scopeSpans", "spans")
LOGS = ("resourceLogs", "scopeLogs", "logRecords")


def json_export_items(
    document: dict[str, Any], path: tuple[str, str, str]
) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(resource block, scope block, item) for each item; a container that is not a list is
    a :class:`~.model.DecodeError`, entries that are not objects are skipped."""
    top, middle, leaf = path
    for resource_block in json_list(document, top):
        for scope_block in json_list(resource_block, middle):
            for item in json_list(scope_block, leaf):
                yield resource_block, scope_block, item


class JsonEvent(NamedTuple):
    name: str
    time: int
    attributes: list[Any]  # the KeyValue list, not decoded


class JsonSpan(NamedTuple):
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes  # b"" when absent
    name: str
    kind: int
    start_time: int
    end_time: int
    flags: int
    status_code: int
    status_message: str
    attributes: list[Any]
    events: tuple[JsonEvent, ...]
    links: tuple[tuple[bytes, bytes, list[Any]], ...]


class JsonLog(NamedTuple):
    time: int
    observed_time: int
    severity_number: int
    severity_text: str
    body: Any
    attributes: list[Any]
    trace_id: bytes
    span_id: bytes
    event_name: str


def json_span(item: dict[str, Any]) -> JsonSpan:
    """A span's fields, checked; :class:`~.rules.Rejected` names the first bad one."""
    trace_id = json_hex_id(item.get("traceId"), TRACE_ID)
    span_id = json_hex_id(item.get("spanId"), SPAN_ID)
    parent_id = json_hex_id(item.get("parentSpanId"), PARENT_SPAN_ID)
    name = json_text(item.get("name"), "name")
    problem = span_problem(trace_id, span_id, parent_id, name)
    if problem is not None:
        raise Rejected(problem)
    status = json_object(item.get("status"), "status")
    return JsonSpan(
        trace_id,
        span_id,
        parent_id if any(parent_id) else b"",
        name,
        json_enum(item.get("kind"), KIND_NAMES, "kind"),
        json_uint(item.get("startTimeUnixNano"), "startTimeUnixNano"),
        json_uint(item.get("endTimeUnixNano"), "endTimeUnixNano"),
        json_uint(item.get("flags"), "flags"),
        json_enum(status.get("code"), STATUS_NAMES, "status.code"),
        json_text(status.get("message"), "status.message"),
        json_array(item.get("attributes"), "attributes"),
        tuple(
            JsonEvent(
                json_text(event.get("name"), "event name"),
                json_uint(event.get("timeUnixNano"), "event timeUnixNano"),
                json_array(event.get("attributes"), "event attributes"),
            )
            for event in json_array(item.get("events"), "events")
            if isinstance(event, dict)
        ),
        tuple(
            (
                json_link_id(link.get("traceId"), TRACE_ID.size),
                json_link_id(link.get("spanId"), SPAN_ID.size),
                json_array(link.get("attributes"), "link attributes"),
            )
            for link in json_array(item.get("links"), "links")
            if isinstance(link, dict)
        ),
    )


def json_log(item: dict[str, Any]) -> JsonLog:
    """A log record's fields, checked; :class:`~.rules.Rejected` names the first bad one."""
    trace_id = json_hex_id(item.get("traceId"), LOG_TRACE_ID)
    span_id = json_hex_id(item.get("spanId"), LOG_SPAN_ID)
    problem = log_problem(trace_id, span_id)
    if problem is not None:
        raise Rejected(problem)
    return JsonLog(
        json_uint(item.get("timeUnixNano"), "timeUnixNano"),
        json_uint(item.get("observedTimeUnixNano"), "observedTimeUnixNano"),
        json_enum(item.get("severityNumber"), SEVERITY_NAMES, "severityNumber"),
        json_text(item.get("severityText"), "severityText"),
        json_any_value(item.get("body")),
        json_array(item.get("attributes"), "attributes"),
        trace_id,
        span_id,
        json_text(item.get("eventName"), "eventName"),
    )
