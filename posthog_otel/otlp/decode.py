"""OTLP export requests (protobuf or OTLP JSON) -> the bridge's light span and log objects.

The objects (:mod:`.model`) have the attributes
:class:`~posthog_otel.spans.mapping.SpanMapper` reads from an SDK ``ReadableSpan``, so the
bridge maps spans with exactly the rules the in-process exporter uses. The sink reads every
field of every item instead, with :mod:`.items`; both use the same readers.

Speed: decoding a span's attributes costs far more than everything else about it, and most
spans produce no event. So every span's cheap fields are read first and handed to ``want``
(for spans, :meth:`SpanMapper.may_yield`); only the spans it wants get their attributes and
events decoded. Whether a span may carry ``posthog.event`` or an ``exception`` event is
answered by searching its bytes (protobuf stores strings verbatim, so a span without those
bytes has neither; a false positive only costs a full decode).

Protobuf is read straight from the wire format by :mod:`._wire_traces` and :mod:`._wire_logs`
(several times faster than reading fields through generated classes); OTLP JSON with the
helpers in :mod:`.json_format`.

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

import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode

from ._wire import WireError, any_value, attributes_in
from ._wire_logs import LOG_ATTRIBUTES, log_head, log_records
from ._wire_traces import (
    event_in,
    resource_attributes,
    span_head,
    span_prefix,
    status_in,
    trace_spans,
)
from .json_format import (
    KIND_NAMES,
    SEVERITY_NAMES,
    STATUS_NAMES,
    json_any_value,
    json_dict,
    json_document,
    json_enum,
    json_id,
    json_int,
    json_limited_attributes,
    json_list,
)
from .keys import EVENT_ATTRIBUTE
from .model import (
    KINDS,
    STATUS_CODES,
    Batch,
    DecodedLog,
    DecodedSpan,
    DecodeError,
    ParentContext,
    ResourceData,
    SpanEventData,
    SpanIds,
    SpanStatus,
    parent_is_remote,
)
from .responses import PROTOBUF

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

_MARKER = EVENT_ATTRIBUTE.encode()
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


# --------------------------------------------------------------------------- entry points


def decode_traces(
    body: bytes | bytearray, content_type: str, want: SpanWant, max_attributes: int = 128
) -> Batch[DecodedSpan]:
    """Decode an ``ExportTraceServiceRequest``; see the module docstring."""
    if content_type == PROTOBUF:
        return _traces_protobuf(bytes(body), want, max_attributes)
    return _traces_json(json_document(body), body, want, max_attributes)


def decode_logs(
    body: bytes | bytearray, content_type: str, want: LogWant, max_attributes: int = 128
) -> Batch[DecodedLog]:
    """Decode an ``ExportLogsServiceRequest``; ``want(severity_number, maybe_marked)``."""
    if content_type == PROTOBUF:
        return _logs_protobuf(bytes(body), want, max_attributes)
    return _logs_json(json_document(body), body, want, max_attributes)


# --------------------------------------------------------------------------- protobuf


def _traces_protobuf(body: bytes, want: SpanWant, limit: int) -> Batch[DecodedSpan]:
    try:
        return _read_traces(body, want, limit)
    except (WireError, IndexError, struct.error, RecursionError) as exc:
        raise DecodeError(f"body is not a valid OTLP trace protobuf message: {exc}") from None


def _read_traces(data: bytes, want: SpanWant, limit: int) -> Batch[DecodedSpan]:
    maybe_marked = _MARKER in data
    batch: Batch[DecodedSpan] = Batch()
    items = batch.items
    kinds = KINDS
    head_of = span_head
    resources: dict[tuple[int, int] | None, ResourceData] = {}
    find = data.find
    # With capture_spans="all" every span is wanted: then the quick look below is wasted.
    quick = not want(SpanKind.INTERNAL, True, False, False)
    for where, start, end in trace_spans(data):
        batch.total += 1
        prefix = span_prefix(data, start, end) if quick else None
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
        remote = parent_is_remote(head.flags) if has_parent else False
        exceptions = head.exception_events
        marked = maybe_marked and find(_MARKER, start, end) >= 0
        if not want(kind, has_parent and not remote, exceptions > 0, marked):
            continue
        resource = resources.get(where)
        if resource is None:
            attributes = resource_attributes(data, where[0], where[1], limit) if where else {}
            resource = resources[where] = ResourceData(attributes)
        code, message = status_in(data, *head.status) if head.status else (0, "")
        items.append(
            DecodedSpan(
                head.name,
                kind,
                SpanIds(int.from_bytes(trace_id, "big"), int.from_bytes(span_id, "big")),
                ParentContext(int.from_bytes(parent_id, "big"), remote) if has_parent else None,
                head.start_time,
                head.end_time,
                SpanStatus(STATUS_CODES.get(code, StatusCode.UNSET), message),
                head.attributes,
                tuple(
                    SpanEventData(*event_in(data, begin, finish, limit))
                    for begin, finish in head.events[:limit]
                )
                if head.events
                else (),
                resource,
            )
        )
        batch.exception_events += exceptions
    return batch


def _logs_protobuf(body: bytes, want: LogWant, limit: int) -> Batch[DecodedLog]:
    try:
        return _read_logs(body, want, limit)
    except (WireError, IndexError, struct.error, RecursionError) as exc:
        raise DecodeError(f"body is not a valid OTLP logs protobuf message: {exc}") from None


def _read_logs(data: bytes, want: LogWant, limit: int) -> Batch[DecodedLog]:
    maybe_marked = _MARKER in data
    batch: Batch[DecodedLog] = Batch()
    resources: dict[tuple[int, int] | None, ResourceData] = {}
    for where, start, end in log_records(data):
        batch.total += 1
        head = log_head(data, start, end)
        trace_id = head.trace_id
        span_id = head.span_id
        if (trace_id and len(trace_id) != 16) or (span_id and len(span_id) != 8):
            batch.reject("log record with a malformed traceId or spanId")
            continue
        if not want(head.severity_number, maybe_marked):
            continue
        resource = resources.get(where)
        if resource is None:
            attributes = resource_attributes(data, where[0], where[1], limit) if where else {}
            resource = resources[where] = ResourceData(attributes)
        batch.items.append(
            DecodedLog(
                head.time or head.observed_time,
                head.severity_number,
                head.severity_text,
                any_value(data, *head.body) if head.body else None,
                attributes_in(data, start, end, limit, tag=LOG_ATTRIBUTES),
                int.from_bytes(trace_id, "big"),
                int.from_bytes(span_id, "big"),
                head.event_name,
                resource,
            )
        )
    return batch


# --------------------------------------------------------------------------- OTLP JSON


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
    for resource_spans in json_list(document, "resourceSpans"):
        resource: ResourceData | None = None
        for scope_spans in json_list(resource_spans, "scopeSpans"):
            for span in json_list(scope_spans, "spans"):
                batch.total += 1
                trace_id = json_id(span.get("traceId"), 32)
                span_id = json_id(span.get("spanId"), 16)
                parent_id = json_id(span.get("parentSpanId"), 16)
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
                kind = KINDS.get(json_enum(span.get("kind"), KIND_NAMES), SpanKind.INTERNAL)
                remote = parent_is_remote(json_int(span.get("flags"))) if parent_id else False
                events = [event for event in json_list(span, "events")][:limit]
                exceptions = sum(1 for event in events if event.get("name") == "exception")
                raw_attributes = span.get("attributes")
                marked = may_have_marker and _json_marked(raw_attributes)
                if not want(kind, bool(parent_id) and not remote, exceptions > 0, marked):
                    continue
                if resource is None:
                    resource = ResourceData(
                        json_limited_attributes(
                            json_dict(resource_spans.get("resource")).get("attributes"), limit
                        )
                    )
                status = json_dict(span.get("status"))
                message = status.get("message")
                batch.items.append(
                    DecodedSpan(
                        name,
                        kind,
                        SpanIds(trace_id, span_id),
                        ParentContext(parent_id, remote) if parent_id else None,
                        json_int(span.get("startTimeUnixNano")),
                        json_int(span.get("endTimeUnixNano")),
                        SpanStatus(
                            STATUS_CODES.get(
                                json_enum(status.get("code"), STATUS_NAMES), StatusCode.UNSET
                            ),
                            message if isinstance(message, str) else "",
                        ),
                        json_limited_attributes(raw_attributes, limit),
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
            json_int(event.get("timeUnixNano")),
            json_limited_attributes(event.get("attributes"), limit),
        )


def _logs_json(
    document: Mapping[str, Any], body: bytes | bytearray, want: LogWant, limit: int
) -> Batch[DecodedLog]:
    may_have_marker = b"posthog" in body or b"\\u" in body
    batch: Batch[DecodedLog] = Batch()
    for resource_logs in json_list(document, "resourceLogs"):
        resource: ResourceData | None = None
        for scope_logs in json_list(resource_logs, "scopeLogs"):
            for record in json_list(scope_logs, "logRecords"):
                batch.total += 1
                trace_id = json_id(record.get("traceId"), 32)
                span_id = json_id(record.get("spanId"), 16)
                if trace_id is None or span_id is None:
                    batch.reject("log record with a malformed traceId or spanId (hex)")
                    continue
                severity = json_enum(record.get("severityNumber"), SEVERITY_NAMES)
                raw_attributes = record.get("attributes")
                marked = may_have_marker and _json_marked(raw_attributes)
                if not want(severity, marked):
                    continue
                if resource is None:
                    resource = ResourceData(
                        json_limited_attributes(
                            json_dict(resource_logs.get("resource")).get("attributes"), limit
                        )
                    )
                text = record.get("severityText")
                event_name = record.get("eventName")
                batch.items.append(
                    DecodedLog(
                        json_int(record.get("timeUnixNano"))
                        or json_int(record.get("observedTimeUnixNano")),
                        severity,
                        text if isinstance(text, str) else "",
                        json_any_value(record.get("body")),
                        json_limited_attributes(raw_attributes, limit),
                        trace_id,
                        span_id,
                        event_name if isinstance(event_name, str) else "",
                        resource,
                    )
                )
    return batch
