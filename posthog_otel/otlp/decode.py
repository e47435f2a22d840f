"""OTLP export requests (protobuf or OTLP JSON) -> light span and log-record objects.

The objects have the attributes :class:`~posthog_otel.spans.mapping.SpanMapper` reads from an SDK
``ReadableSpan`` (``name``, ``kind``, ``context``, ``parent``, ``status``, ``attributes``,
``events``, ``resource``, …), so the bridge maps spans with exactly the rules the in-process
exporter uses.

Speed: decoding a span's attributes costs far more than everything else about it, and most
spans produce no event. So every span's cheap fields are read first and handed to ``want``
(for spans, :meth:`SpanMapper.may_yield`); only the spans it wants get their attributes and
events decoded. Whether a span may carry ``posthog.event`` or an ``exception`` event is
answered by searching its bytes (protobuf stores strings verbatim, so a span without those
bytes has neither; a false positive only costs a full decode).

Protobuf is read straight from the wire format by :mod:`._wire` (several times faster than
reading fields through generated classes). OTLP JSON is read by hand too, because it is not
plain proto3 JSON: trace and span ids are hex, enums are integers (names are accepted too),
64-bit integers may be text.

Rejected items (counted for ``partial_success``): spans without a valid trace or span id or a
name, log records with malformed ids. A body that is not an export request at all raises
:class:`DecodeError` (answer 400).

Usage::

    batch = decode_traces(body, PROTOBUF, want=mapper.may_yield)
    for span in batch.items:
        events = mapper.events_for(span)
    batch.total, batch.rejected, batch.first_error
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

from opentelemetry.trace import SpanKind, StatusCode

from ..spans.mapping import EVENT_ATTRIBUTE
from . import _wire
from .responses import PROTOBUF, json_any_value, json_attributes

__all__ = [
    "Batch",
    "DecodeError",
    "DecodedLog",
    "DecodedSpan",
    "ParentContext",
    "ResourceData",
    "SpanEventData",
    "SpanIds",
    "SpanStatus",
    "decode_logs",
    "decode_traces",
]

SpanWant = Callable[[SpanKind, bool, bool, bool], bool]
LogWant = Callable[[int, bool], bool]
T = TypeVar("T")

_MARKER = EVENT_ATTRIBUTE.encode()
# OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer
_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_KIND_NAMES = {
    f"SPAN_KIND_{name}": number
    for number, name in enumerate(
        ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
    )
}
_STATUS = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}
_STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_SEVERITY_NAMES = {
    f"SEVERITY_NUMBER_{level}{suffix}": base + offset
    for level, base in (
        ("TRACE", 1),
        ("DEBUG", 5),
        ("INFO", 9),
        ("WARN", 13),
        ("ERROR", 17),
        ("FATAL", 21),
    )
    for offset, suffix in enumerate(("", "2", "3", "4"))
}
_SEVERITY_NAMES["SEVERITY_NUMBER_UNSPECIFIED"] = 0
# SpanFlags: bit 8 says whether bit 9 (the parent is remote) is known
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
_HEX = re.compile(r"[0-9a-fA-F]+")
_ALWAYS_KEPT = _wire.ALWAYS_KEPT


class DecodeError(ValueError):
    """The body is not an OTLP export request of the expected kind (answer 400)."""


# --------------------------------------------------------------------------- the objects


class SpanIds(NamedTuple):
    trace_id: int
    span_id: int


class ParentContext(NamedTuple):
    span_id: int
    is_remote: bool


class SpanStatus(NamedTuple):
    status_code: StatusCode
    description: str


class SpanEventData(NamedTuple):
    name: str
    timestamp: int
    attributes: dict[str, Any]


class ResourceData(NamedTuple):
    attributes: dict[str, Any]


class DecodedSpan:
    """One span, shaped like the parts of ``ReadableSpan`` the mapper reads."""

    __slots__ = (
        "attributes",
        "context",
        "end_time",
        "events",
        "kind",
        "name",
        "parent",
        "resource",
        "start_time",
        "status",
    )

    def __init__(
        self,
        name: str,
        kind: SpanKind,
        context: SpanIds,
        parent: ParentContext | None,
        start_time: int,
        end_time: int,
        status: SpanStatus,
        attributes: dict[str, Any],
        events: tuple[SpanEventData, ...],
        resource: ResourceData,
    ) -> None:
        self.name = name
        self.kind = kind
        self.context = context
        self.parent = parent
        self.start_time = start_time
        self.end_time = end_time
        self.status = status
        self.attributes = attributes
        self.events = events
        self.resource = resource

    def __repr__(self) -> str:
        return f"DecodedSpan({self.name!r}, {self.kind.name}, trace={self.context.trace_id:032x})"


class DecodedLog:
    """One log record; ``timestamp`` is nanoseconds (``time`` else ``observed_time``)."""

    __slots__ = (
        "attributes",
        "body",
        "event_name",
        "resource",
        "severity_number",
        "severity_text",
        "span_id",
        "timestamp",
        "trace_id",
    )

    def __init__(
        self,
        timestamp: int,
        severity_number: int,
        severity_text: str,
        body: Any,
        attributes: dict[str, Any],
        trace_id: int,
        span_id: int,
        event_name: str,
        resource: ResourceData,
    ) -> None:
        self.timestamp = timestamp
        self.severity_number = severity_number
        self.severity_text = severity_text
        self.body = body
        self.attributes = attributes
        self.trace_id = trace_id
        self.span_id = span_id
        self.event_name = event_name
        self.resource = resource

    def __repr__(self) -> str:
        return f"DecodedLog(severity={self.severity_number}, body={self.body!r:.60})"


@dataclass
class Batch(Generic[T]):
    """What one request held: the wanted items, and counts for the answer."""

    items: list[T] = field(default_factory=list)
    total: int = 0
    rejected: int = 0
    first_error: str | None = None
    exception_events: int = 0  # "exception" span events among the wanted spans

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if self.first_error is None:
            self.first_error = reason


# --------------------------------------------------------------------------- entry points


def decode_traces(
    body: bytes | bytearray, content_type: str, want: SpanWant, max_attributes: int = 128
) -> Batch[DecodedSpan]:
    """Decode an ``ExportTraceServiceRequest``; see the module docstring."""
    if content_type == PROTOBUF:
        return _traces_protobuf(bytes(body), want, max_attributes)
    return _traces_json(_json_document(body), body, want, max_attributes)


def decode_logs(
    body: bytes | bytearray, content_type: str, want: LogWant, max_attributes: int = 128
) -> Batch[DecodedLog]:
    """Decode an ``ExportLogsServiceRequest``; ``want(severity_number, maybe_marked)``."""
    if content_type == PROTOBUF:
        return _logs_protobuf(bytes(body), want, max_attributes)
    return _logs_json(_json_document(body), body, want, max_attributes)


# --------------------------------------------------------------------------- protobuf


def _traces_protobuf(body: bytes, want: SpanWant, limit: int) -> Batch[DecodedSpan]:
    try:
        return _read_traces(body, want, limit)
    except (_wire.WireError, IndexError, struct.error, RecursionError) as exc:
        raise DecodeError(f"body is not a valid OTLP trace protobuf message: {exc}") from None


def _read_traces(data: bytes, want: SpanWant, limit: int) -> Batch[DecodedSpan]:
    maybe_marked = _MARKER in data
    batch: Batch[DecodedSpan] = Batch()
    items = batch.items
    kinds = _KINDS
    head_of = _wire.span_head
    resources: dict[tuple[int, int] | None, ResourceData] = {}
    find = data.find
    # With capture_spans="all" every span is wanted: then the quick look below is wasted.
    quick = not want(SpanKind.INTERNAL, True, False, False)
    for where, start, end in _wire.trace_spans(data):
        batch.total += 1
        prefix = _wire.span_prefix(data, start, end) if quick else None
        if prefix is not None:
            # Most spans yield nothing: decide from the fields before the attributes when
            # even a remote parent would not make the span wanted, without reading the rest.
            trace_id, span_id, parent_id, _, kind_number = prefix
            if (
                len(trace_id) == 16
                and len(span_id) == 8
                and len(parent_id) in (0, 8)
                and trace_id != _ZERO_TRACE
                and span_id != _ZERO_SPAN
                and not want(
                    kinds.get(kind_number, SpanKind.INTERNAL),
                    False,
                    find(b"exception", start, end) >= 0,
                    maybe_marked and find(_MARKER, start, end) >= 0,
                )
            ):
                continue
        head = head_of(data, start, end, limit)
        trace_id = head.trace_id
        span_id = head.span_id
        parent_id = head.parent_span_id
        if (
            len(trace_id) != 16
            or len(span_id) != 8
            or trace_id == _ZERO_TRACE
            or span_id == _ZERO_SPAN
        ):
            batch.reject("span without a valid traceId and spanId")
            continue
        if parent_id and len(parent_id) != 8:
            batch.reject("span with a malformed parentSpanId")
            continue
        if not head.name:
            batch.reject("span without a name")
            continue
        kind = kinds.get(head.kind, SpanKind.INTERNAL)
        has_parent = bool(parent_id) and parent_id != _ZERO_SPAN
        remote = _parent_is_remote(head.flags) if has_parent else False
        exceptions = head.exception_events
        marked = maybe_marked and find(_MARKER, start, end) >= 0
        if not want(kind, has_parent and not remote, exceptions > 0, marked):
            continue
        resource = resources.get(where)
        if resource is None:
            attributes = _wire.resource_attributes(data, where[0], where[1], limit) if where else {}
            resource = resources[where] = ResourceData(attributes)
        code, message = _wire.status_in(data, *head.status) if head.status else (0, "")
        items.append(
            DecodedSpan(
                head.name,
                kind,
                SpanIds(int.from_bytes(trace_id, "big"), int.from_bytes(span_id, "big")),
                ParentContext(int.from_bytes(parent_id, "big"), remote) if has_parent else None,
                head.start_time,
                head.end_time,
                SpanStatus(_STATUS.get(code, StatusCode.UNSET), message),
                head.attributes,
                tuple(
                    SpanEventData(*_wire.event_in(data, begin, finish, limit))
                    for begin, finish in head.events[:limit]
                )
                if head.events
                else (),
                resource,
            )
        )
        batch.exception_events += exceptions
    return batch


def _parent_is_remote(flags: int) -> bool:
    """Whether a span's parent is in another process. Senders that do not say (older SDKs)
    get True: the only spans this matters for are SERVER and CONSUMER spans, whose parent is
    almost always the CLIENT or PRODUCER span of another service."""
    if flags & _HAS_IS_REMOTE:
        return bool(flags & _IS_REMOTE)
    return True


def _logs_protobuf(body: bytes, want: LogWant, limit: int) -> Batch[DecodedLog]:
    try:
        return _read_logs(body, want, limit)
    except (_wire.WireError, IndexError, struct.error, RecursionError) as exc:
        raise DecodeError(f"body is not a valid OTLP logs protobuf message: {exc}") from None


def _read_logs(data: bytes, want: LogWant, limit: int) -> Batch[DecodedLog]:
    maybe_marked = _MARKER in data
    batch: Batch[DecodedLog] = Batch()
    resources: dict[tuple[int, int] | None, ResourceData] = {}
    for where, start, end in _wire.log_records(data):
        batch.total += 1
        head = _wire.log_head(data, start, end)
        trace_id = head.trace_id
        span_id = head.span_id
        if (trace_id and len(trace_id) != 16) or (span_id and len(span_id) != 8):
            batch.reject("log record with a malformed traceId or spanId")
            continue
        if not want(head.severity_number, maybe_marked):
            continue
        resource = resources.get(where)
        if resource is None:
            attributes = _wire.resource_attributes(data, where[0], where[1], limit) if where else {}
            resource = resources[where] = ResourceData(attributes)
        batch.items.append(
            DecodedLog(
                head.time or head.observed_time,
                head.severity_number,
                head.severity_text,
                _wire.any_value(data, *head.body) if head.body else None,
                _wire.attributes_in(data, start, end, limit, tag=0x32),
                int.from_bytes(trace_id, "big"),
                int.from_bytes(span_id, "big"),
                head.event_name,
                resource,
            )
        )
    return batch


# --------------------------------------------------------------------------- OTLP JSON


def _json_document(body: bytes | bytearray) -> dict[str, Any]:
    try:
        document = json.loads(body or b"{}")
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DecodeError("an OTLP JSON body must be an object")
    return document


def _json_list(holder: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = holder.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError(f"{key} must be a list")
    return [item for item in value if isinstance(item, dict)]


def _json_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json_id(value: Any, length: int) -> int | None:
    """A hex id of ``length`` digits as an int; 0 when absent; None when malformed."""
    if value is None or value == "":
        return 0
    if not isinstance(value, str) or len(value) != length or not _HEX.fullmatch(value):
        return None
    return int(value, 16)


def _json_int(value: Any, default: int = 0) -> int:
    """A 64-bit integer written as a JSON number or as text."""
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else default
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def _json_enum(value: Any, names: Mapping[str, int]) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    return _json_int(value)


def _json_attributes(value: Any, limit: int) -> dict[str, Any]:
    if isinstance(value, list) and len(value) > limit:
        head = value[:limit] + [
            item
            for item in value[limit:]
            if isinstance(item, dict)
            and isinstance(item.get("key"), str)
            and item["key"].startswith(_ALWAYS_KEPT)
        ]
        return json_attributes(head)
    return json_attributes(value)


def _json_marked(attributes: Any) -> bool:
    return isinstance(attributes, list) and any(
        isinstance(item, dict) and item.get("key") == EVENT_ATTRIBUTE for item in attributes
    )


def _traces_json(
    document: Mapping[str, Any], body: bytes | bytearray, want: SpanWant, limit: int
) -> Batch[DecodedSpan]:
    # JSON strings may escape characters (\u0070), so a body-wide search only rules markers out.
    may_have_marker = b"posthog" in body or b"\\u" in body
    batch: Batch[DecodedSpan] = Batch()
    for resource_spans in _json_list(document, "resourceSpans"):
        resource: ResourceData | None = None
        for scope_spans in _json_list(resource_spans, "scopeSpans"):
            for span in _json_list(scope_spans, "spans"):
                batch.total += 1
                trace_id = _json_id(span.get("traceId"), 32)
                span_id = _json_id(span.get("spanId"), 16)
                parent_id = _json_id(span.get("parentSpanId"), 16)
                if not trace_id or not span_id:
                    batch.reject("span without a valid traceId and spanId (hex)")
                    continue
                if parent_id is None:
                    batch.reject("span with a malformed parentSpanId")
                    continue
                name = span.get("name")
                if not isinstance(name, str) or not name:
                    batch.reject("span without a name")
                    continue
                kind = _KINDS.get(_json_enum(span.get("kind"), _KIND_NAMES), SpanKind.INTERNAL)
                remote = _parent_is_remote(_json_int(span.get("flags"))) if parent_id else False
                events = [event for event in _json_list(span, "events")][:limit]
                exceptions = sum(1 for event in events if event.get("name") == "exception")
                raw_attributes = span.get("attributes")
                marked = may_have_marker and _json_marked(raw_attributes)
                if not want(kind, bool(parent_id) and not remote, exceptions > 0, marked):
                    continue
                if resource is None:
                    resource = ResourceData(
                        _json_attributes(
                            _json_dict(resource_spans.get("resource")).get("attributes"), limit
                        )
                    )
                status = _json_dict(span.get("status"))
                message = status.get("message")
                batch.items.append(
                    DecodedSpan(
                        name,
                        kind,
                        SpanIds(trace_id, span_id),
                        ParentContext(parent_id, remote) if parent_id else None,
                        _json_int(span.get("startTimeUnixNano")),
                        _json_int(span.get("endTimeUnixNano")),
                        SpanStatus(
                            _STATUS.get(
                                _json_enum(status.get("code"), _STATUS_NAMES), StatusCode.UNSET
                            ),
                            message if isinstance(message, str) else "",
                        ),
                        _json_attributes(raw_attributes, limit),
                        tuple(_json_events(events, limit)),
                        resource,
                    )
                )
                batch.exception_events += exceptions
    return batch


def _json_events(events: Iterable[dict[str, Any]], limit: int) -> Iterable[SpanEventData]:
    for event in events:
        name = event.get("name")
        yield SpanEventData(
            name if isinstance(name, str) else "",
            _json_int(event.get("timeUnixNano")),
            _json_attributes(event.get("attributes"), limit),
        )


def _logs_json(
    document: Mapping[str, Any], body: bytes | bytearray, want: LogWant, limit: int
) -> Batch[DecodedLog]:
    may_have_marker = b"posthog" in body or b"\\u" in body
    batch: Batch[DecodedLog] = Batch()
    for resource_logs in _json_list(document, "resourceLogs"):
        resource: ResourceData | None = None
        for scope_logs in _json_list(resource_logs, "scopeLogs"):
            for record in _json_list(scope_logs, "logRecords"):
                batch.total += 1
                trace_id = _json_id(record.get("traceId"), 32)
                span_id = _json_id(record.get("spanId"), 16)
                if trace_id is None or span_id is None:
                    batch.reject("log record with a malformed traceId or spanId (hex)")
                    continue
                severity = _json_enum(record.get("severityNumber"), _SEVERITY_NAMES)
                raw_attributes = record.get("attributes")
                marked = may_have_marker and _json_marked(raw_attributes)
                if not want(severity, marked):
                    continue
                if resource is None:
                    resource = ResourceData(
                        _json_attributes(
                            _json_dict(resource_logs.get("resource")).get("attributes"), limit
                        )
                    )
                text = record.get("severityText")
                event_name = record.get("eventName")
                batch.items.append(
                    DecodedLog(
                        _json_int(record.get("timeUnixNano"))
                        or _json_int(record.get("observedTimeUnixNano")),
                        severity,
                        text if isinstance(text, str) else "",
                        json_any_value(record.get("body")),
                        _json_attributes(raw_attributes, limit),
                        trace_id,
                        span_id,
                        event_name if isinstance(event_name, str) else "",
                        resource,
                    )
                )
    return batch
