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
(several times faster than reading fields through generated classes); OTLP JSON by
:mod:`.json_items`. The walk over the request and the readers of each item are the ones the
sink uses (:mod:`.items`).

Rejected items (counted for ``partial_success``, with the first reason) are the ones
:mod:`.rules` rejects, the same as the sink's. Given a ``deadline`` (``time.monotonic()``),
decoding stops there: the items not yet read are counted as rejected (so one request cannot
hold a process for long, whatever it holds: 4 MiB of empty spans are 2 million items). A body that is not an export request at all
raises :class:`DecodeError` (answer 400).

Usage::

    batch = decode_traces(body, PROTOBUF, want=mapper.may_yield)
    for span in batch.items:
        events = mapper.events_for(span)
    batch.total, batch.rejected, batch.first_error
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode

from ._wire import WireError, any_value, attributes_in
from ._wire_logs import LOG_ATTRIBUTES, log_head
from ._wire_traces import (
    event_in,
    export_items,
    resource_attributes,
    span_head,
    span_prefix,
    status_in,
)
from .json_format import json_dict, json_document, json_limited_attributes
from .json_items import LOGS, SPANS, JsonEvent, json_export_items, json_log, json_span
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
from .rules import Rejected, log_problem, span_problem

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
# attribute names that may make a span an event: the marker, and GenAI spans (LLM analytics)
_SPAN_MARKERS = (_MARKER, b"gen_ai.", b"llm.request.type", b"posthog.ai.")
_JSON_MARKER_PREFIXES = (EVENT_ATTRIBUTE, "gen_ai.", "llm.request.type", "posthog.ai.")
_EMPTY_SPAN = span_problem(b"", b"", b"", "") or "span has no ids"
_ZERO_SPAN = bytes(8)


# --------------------------------------------------------------------------- entry points


def decode_traces(
    body: bytes | bytearray,
    content_type: str,
    want: SpanWant,
    max_attributes: int = 128,
    *,
    deadline: float | None = None,
) -> Batch[DecodedSpan]:
    """Decode an ``ExportTraceServiceRequest``; see the module docstring."""
    if content_type == PROTOBUF:
        return _traces_protobuf(bytes(body), want, max_attributes, deadline)
    return _traces_json(json_document(body), body, want, max_attributes, deadline)


def decode_logs(
    body: bytes | bytearray,
    content_type: str,
    want: LogWant,
    max_attributes: int = 128,
    *,
    deadline: float | None = None,
) -> Batch[DecodedLog]:
    """Decode an ``ExportLogsServiceRequest``; ``want(severity_number, maybe_marked)``."""
    if content_type == PROTOBUF:
        return _logs_protobuf(bytes(body), want, max_attributes, deadline)
    return _logs_json(json_document(body), body, want, max_attributes, deadline)


_CHECK_EVERY = 1024  # items between clock reads
OVER_TIME = "the request took too long to decode; the remaining items were not read"


def _late(batch: Batch[Any], deadline: float | None) -> bool:
    """Whether decoding is past ``deadline`` (the clock is read every 1,024 items)."""
    return deadline is not None and not batch.total % _CHECK_EVERY and time.monotonic() > deadline


def _give_up(batch: Batch[Any], rest: Iterator[Any]) -> None:
    """Count the current item and every one left in ``rest`` as rejected."""
    batch.reject(OVER_TIME)
    for _ in rest:
        batch.total += 1
        batch.rejected += 1


# --------------------------------------------------------------------------- protobuf


def _traces_protobuf(
    body: bytes, want: SpanWant, limit: int, deadline: float | None
) -> Batch[DecodedSpan]:
    try:
        return _read_traces(body, want, limit, deadline)
    except (WireError, IndexError, struct.error, RecursionError) as exc:
        raise DecodeError(f"body is not a valid OTLP trace protobuf message: {exc}") from None


def _read_traces(
    data: bytes, want: SpanWant, limit: int, deadline: float | None = None
) -> Batch[DecodedSpan]:
    maybe_marked = any(marker in data for marker in _SPAN_MARKERS)
    batch: Batch[DecodedSpan] = Batch()
    items = batch.items
    kinds = KINDS
    head_of = span_head
    resources: dict[tuple[int, int] | None, ResourceData] = {}
    find = data.find
    # With capture_spans="all" every span is wanted: then the quick look below is wasted.
    quick = not want(SpanKind.INTERNAL, True, False, False)
    walk = export_items(data)
    for where, _, start, end in walk:
        batch.total += 1
        if _late(batch, deadline):
            _give_up(batch, walk)
            break
        if start == end:  # an empty span: no ids
            batch.reject(_EMPTY_SPAN)
            continue
        prefix = span_prefix(data, start, end) if quick else None
        if prefix is not None:
            # Most spans yield nothing: decide from the fields before the attributes when
            # even a remote parent would not make the span wanted, without reading the rest.
            trace_id, span_id, parent_id, name, kind_number = prefix
            if span_problem(trace_id, span_id, parent_id, name) is None and not want(
                kinds.get(kind_number, SpanKind.INTERNAL),
                False,
                find(b"exception", start, end) >= 0,
                maybe_marked and _span_marked(find, start, end),
            ):
                continue
        head = head_of(data, start, end, limit)
        trace_id = head.trace_id
        span_id = head.span_id
        parent_id = head.parent_span_id
        problem = span_problem(trace_id, span_id, parent_id, head.name)
        if problem is not None:
            batch.reject(problem)
            continue
        kind = kinds.get(head.kind, SpanKind.INTERNAL)
        has_parent = bool(parent_id) and parent_id != _ZERO_SPAN
        remote = parent_is_remote(head.flags) if has_parent else False
        exceptions = head.exception_events
        marked = maybe_marked and _span_marked(find, start, end)
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


def _logs_protobuf(
    body: bytes, want: LogWant, limit: int, deadline: float | None
) -> Batch[DecodedLog]:
    try:
        return _read_logs(body, want, limit, deadline)
    except (WireError, IndexError, struct.error, RecursionError) as exc:
        raise DecodeError(f"body is not a valid OTLP logs protobuf message: {exc}") from None


def _read_logs(
    data: bytes, want: LogWant, limit: int, deadline: float | None = None
) -> Batch[DecodedLog]:
    maybe_marked = _MARKER in data
    batch: Batch[DecodedLog] = Batch()
    resources: dict[tuple[int, int] | None, ResourceData] = {}
    walk = export_items(data)
    for where, _, start, end in walk:
        batch.total += 1
        if _late(batch, deadline):
            _give_up(batch, walk)
            break
        head = log_head(data, start, end)
        trace_id = head.trace_id
        span_id = head.span_id
        problem = log_problem(trace_id, span_id)
        if problem is not None:
            batch.reject(problem)
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


def _span_marked(find: Callable[[bytes, int, int], int], start: int, end: int) -> bool:
    """Might the span's bytes hold an attribute that makes it an event (``_SPAN_MARKERS``)?"""
    return any(find(marker, start, end) >= 0 for marker in _SPAN_MARKERS)


def _json_marked(attributes: Any, prefixes: tuple[str, ...] = _JSON_MARKER_PREFIXES) -> bool:
    return isinstance(attributes, list) and any(
        isinstance(item, dict)
        and isinstance(item.get("key"), str)
        and item["key"].startswith(prefixes)
        for item in attributes
    )


def _traces_json(
    document: dict[str, Any],
    body: bytes | bytearray,
    want: SpanWant,
    limit: int,
    deadline: float | None = None,
) -> Batch[DecodedSpan]:
    # JSON strings may escape characters (\u0070), so a body-wide search only rules markers out.
    may_have_marker = (
        b"posthog" in body or b"gen_ai" in body or b"llm.request" in body or b"\\u" in body
    )
    batch: Batch[DecodedSpan] = Batch()
    resources: dict[int, ResourceData] = {}
    walk = json_export_items(document, SPANS)
    for resource_block, _, item in walk:
        batch.total += 1
        if _late(batch, deadline):
            _give_up(batch, walk)
            break
        try:
            span = json_span(item)
        except Rejected as problem:
            batch.reject(str(problem))
            continue
        kind = KINDS.get(span.kind, SpanKind.INTERNAL)
        parent_id = span.parent_span_id
        remote = parent_is_remote(span.flags) if parent_id else False
        exceptions = sum(1 for event in span.events if event.name == "exception")
        marked = may_have_marker and _json_marked(span.attributes)
        if not want(kind, bool(parent_id) and not remote, exceptions > 0, marked):
            continue
        items = batch.items
        items.append(
            DecodedSpan(
                span.name,
                kind,
                SpanIds(int.from_bytes(span.trace_id, "big"), int.from_bytes(span.span_id, "big")),
                ParentContext(int.from_bytes(parent_id, "big"), remote) if parent_id else None,
                span.start_time,
                span.end_time,
                SpanStatus(
                    STATUS_CODES.get(span.status_code, StatusCode.UNSET), span.status_message
                ),
                json_limited_attributes(span.attributes, limit),
                tuple(_json_events(span.events[:limit], limit)),
                _json_resource(resources, resource_block, limit),
            )
        )
        batch.exception_events += exceptions
    return batch


def _json_resource(
    cache: dict[int, ResourceData], block: dict[str, Any], limit: int
) -> ResourceData:
    resource = cache.get(id(block))
    if resource is None:
        attributes = json_dict(block.get("resource")).get("attributes")
        resource = cache[id(block)] = ResourceData(json_limited_attributes(attributes, limit))
    return resource


def _json_events(events: Iterable[JsonEvent], limit: int) -> Iterable[SpanEventData]:
    for event in events:
        yield SpanEventData(
            event.name, event.time, json_limited_attributes(event.attributes, limit)
        )


def _logs_json(
    document: dict[str, Any],
    body: bytes | bytearray,
    want: LogWant,
    limit: int,
    deadline: float | None = None,
) -> Batch[DecodedLog]:
    may_have_marker = b"posthog" in body or b"\\u" in body
    batch: Batch[DecodedLog] = Batch()
    resources: dict[int, ResourceData] = {}
    walk = json_export_items(document, LOGS)
    for resource_block, _, item in walk:
        batch.total += 1
        if _late(batch, deadline):
            _give_up(batch, walk)
            break
        try:
            record = json_log(item)
        except Rejected as problem:
            batch.reject(str(problem))
            continue
        marked = may_have_marker and _json_marked(record.attributes, (EVENT_ATTRIBUTE,))
        if not want(record.severity_number, marked):
            continue
        batch.items.append(
            DecodedLog(
                record.time or record.observed_time,
                record.severity_number,
                record.severity_text,
                record.body,
                json_limited_attributes(record.attributes, limit),
                int.from_bytes(record.trace_id, "big"),
                int.from_bytes(record.span_id, "big"),
                record.event_name,
                _json_resource(resources, resource_block, limit),
            )
        )
    return batch
