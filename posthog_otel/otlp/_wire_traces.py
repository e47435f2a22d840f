"""Reading an ``ExportTraceServiceRequest`` straight from the wire (see :mod:`._wire`).

Encoders write a span's ids, name and kind first, so the bridge can stop reading a span after
them (:func:`span_prefix`) when it will not become an event; such a span is checked only for
fitting in its message. :func:`span_head` reads a span in one pass with its attributes decoded
and its events and status only located. :func:`export_items` walks the request for both
consumers (and for logs too: the nesting is the same, see :mod:`._wire_logs`); the sink reads
every field, with :func:`scope_in` and :func:`links_in` for what the bridge never needs.

The length reads in :func:`span_head` and :func:`span_prefix` inline the first varint step on
purpose, for speed (see :mod:`._wire`).

Usage::

    for resource, block, start, end in export_items(body):   # body: bytes
        prefix = span_prefix(body, start, end)           # ids, name, kind: is it wanted?
        head = span_head(body, start, end, limit=128)    # everything, attributes decoded
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from ._wire import (
    KV_CACHE,
    U32,
    U64,
    WireError,
    attributes_in,
    decode_entry,
    fields,
    skip,
    text,
    varint,
)
from .keys import ALWAYS_KEPT

__all__ = [
    "SpanHead",
    "event_in",
    "event_name",
    "export_items",
    "links_in",
    "resource_attributes",
    "scope_in",
    "span_head",
    "span_prefix",
    "status_in",
]

Range = tuple[int, int]


def resource_attributes(data: bytes, pos: int, end: int, limit: int) -> dict[str, Any]:
    """Attributes of a ``Resource`` message (field 1)."""
    return attributes_in(data, pos, end, limit, tag=0x0A)


def export_items(data: bytes) -> Iterator[tuple[Range | None, Range, int, int]]:
    """(resource range or None, scope block range, item start, item end) for each span of an
    ``ExportTraceServiceRequest`` or log record of an ``ExportLogsServiceRequest`` (the same
    nesting: resource 1, scope blocks 2, items 2). The walk both the bridge and the sink use;
    read a block's scope with :func:`scope_in` when it is needed."""
    for tag, start, stop in fields(data, 0, len(data)):
        if tag != 0x0A:  # resource_spans / resource_logs
            continue
        resource: Range | None = None
        blocks: list[Range] = []
        for inner, begin, finish in fields(data, start, stop):
            if inner == 0x0A:
                resource = (begin, finish)
            elif inner == 0x12:
                blocks.append((begin, finish))
        for block in blocks:
            for inner, item_start, item_stop in fields(data, *block):
                if inner == 0x12:  # spans / log_records
                    yield resource, block, item_start, item_stop


class SpanHead(NamedTuple):
    """A span's fields: attributes decoded, events and status located."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    kind: int
    start_time: int
    end_time: int
    flags: int
    attributes: dict[str, Any]
    events: list[tuple[int, int]]
    exception_events: int
    status: tuple[int, int] | None


_EXCEPTION_NAME = b"exception"


def span_head(data: bytes, pos: int, end: int, limit: int) -> SpanHead:
    """Read a ``Span`` in one pass: its fields and (up to ``limit``, see
    :func:`attributes_in`) attributes; events and status are only located."""
    trace_id = span_id = parent = b""
    name = ""
    kind = flags = start_time = end_time = 0
    attributes: dict[str, Any] = {}
    count = 0
    cache = KV_CACHE
    events: list[tuple[int, int]] = []
    exceptions = 0
    status: tuple[int, int] | None = None
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag == 0x4A:  # attributes: the bulk of a span, so first and tight
            # varint inlined on purpose (one byte in the common case): see _wire's docstring
            size = data[pos]
            pos += 1
            if size > 0x7F:
                size, pos = varint(data, pos - 1)
            stop = pos + size
            if stop > end:
                raise WireError("attribute runs past the end of the span")
            raw = data[pos:stop]
            entry = cache.get(raw)
            if entry is None:
                entry = decode_entry(data, pos, stop, raw)
            pos = stop
            key, value = entry
            count += 1
            if count <= limit or key.startswith(ALWAYS_KEPT):
                attributes[key] = value
            continue
        if tag == 0x39:  # start_time_unix_nano
            start_time = U64(data, pos)[0]
            pos += 8
        elif tag == 0x41:  # end_time_unix_nano
            end_time = U64(data, pos)[0]
            pos += 8
        elif tag == 0x30:  # kind
            kind, pos = varint(data, pos)
        elif tag < 8:
            raise WireError("field number 0 is not valid protobuf")
        elif tag & 7 == 2 and tag < 0x80:
            # varint inlined on purpose (one byte in the common case): see _wire's docstring
            size = data[pos]
            pos += 1
            if size > 0x7F:
                size, pos = varint(data, pos - 1)
            stop = pos + size
            if stop > end:
                raise WireError("span field runs past the end of the span")
            if tag == 0x0A:
                trace_id = data[pos:stop]
            elif tag == 0x12:
                span_id = data[pos:stop]
            elif tag == 0x22:
                parent = data[pos:stop]
            elif tag == 0x2A:
                name = text(data, pos, stop)
            elif tag == 0x5A:  # events
                events.append((pos, stop))
                if _EXCEPTION_NAME in data[pos:stop] and event_name(data, pos, stop) == "exception":
                    exceptions += 1
            elif tag == 0x7A:
                status = (pos, stop)
            pos = stop
        elif tag == 0x85 and data[pos] == 0x01:  # flags (field 16, fixed32)
            flags = U32(data, pos + 1)[0]
            pos += 5
        else:
            if tag > 0x7F:
                tag, pos = varint(data, pos - 1)
            pos = skip(data, pos, tag, end)
    if pos != end:
        raise WireError("span runs past its end")
    return SpanHead(
        trace_id,
        span_id,
        parent,
        name,
        kind,
        start_time,
        end_time,
        flags,
        attributes,
        events,
        exceptions,
        status,
    )


def span_prefix(data: bytes, pos: int, end: int) -> tuple[bytes, bytes, bytes, str, int] | None:
    """(trace_id, span_id, parent_span_id, name, kind) from the fields before a span's first
    attribute, where encoders put them (fields 1-8 come first). None when the span is not laid
    out that way (read it with :func:`span_head`). Nothing after the first attribute is read."""
    trace_id = span_id = parent = b""
    name = ""
    kind = 0
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag == 0x30:
            kind, pos = varint(data, pos)
        elif tag == 0x39 or tag == 0x41:
            pos += 8
        elif tag == 0x1A or tag == 0x0A or tag == 0x12 or tag == 0x22 or tag == 0x2A:
            # varint inlined on purpose (one byte in the common case): see _wire's docstring
            size = data[pos]
            pos += 1
            if size > 0x7F:
                size, pos = varint(data, pos - 1)
            stop = pos + size
            if stop > end:
                return None
            if tag == 0x0A:
                trace_id = data[pos:stop]
            elif tag == 0x12:
                span_id = data[pos:stop]
            elif tag == 0x22:
                parent = data[pos:stop]
            elif tag == 0x2A:
                name = text(data, pos, stop)
            pos = stop
        else:
            break
    if not trace_id or not span_id or not name:
        return None
    return trace_id, span_id, parent, name, kind


def event_name(data: bytes, pos: int, end: int) -> str:
    for tag, start, stop in fields(data, pos, end):
        if tag == 0x12:
            return text(data, start, stop)
    return ""


def event_in(data: bytes, pos: int, end: int, limit: int) -> tuple[str, int, dict[str, Any]]:
    """A span ``Event``: (name, time in ns, attributes)."""
    name = ""
    timestamp = 0
    scan = pos
    while scan < end:
        tag = data[scan]
        scan += 1
        if tag == 0x09:
            if scan + 8 > end:
                raise WireError("event time runs past the end of the event")
            timestamp = U64(data, scan)[0]
            scan += 8
        elif tag == 0x12:
            size, scan = varint(data, scan)
            if scan + size > end:
                raise WireError("event name runs past the end of the event")
            name = text(data, scan, scan + size)
            scan += size
        else:
            if tag > 0x7F:
                tag, scan = varint(data, scan - 1)
            scan = skip(data, scan, tag, end)
    return name, timestamp, attributes_in(data, pos, end, limit, tag=0x1A)


def status_in(data: bytes, pos: int, end: int) -> tuple[int, str]:
    """A ``Status``: (code, message)."""
    code = 0
    message = ""
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag == 0x18:
            code, pos = varint(data, pos)
        elif tag == 0x12:
            size, pos = varint(data, pos)
            if pos + size > end:
                raise WireError("status message runs past the end of the status")
            message = text(data, pos, pos + size)
            pos += size
        else:
            if tag > 0x7F:
                tag, pos = varint(data, pos - 1)
            pos = skip(data, pos, tag, end)
    return code, message


# --------------------------------------------------------------------------- every field (sink)


def scope_in(data: bytes, block: Range, limit: int) -> tuple[str, str, dict[str, Any]]:
    """The ``InstrumentationScope`` of a scope block (``ScopeSpans``/``ScopeLogs`` at
    ``block``): (name, version, attributes); empty when the block has none."""
    pos = end = 0
    for tag, start, stop in fields(data, *block):
        if tag == 0x0A:
            pos, end = start, stop
    name = version = ""
    for tag, start, stop in fields(data, pos, end):
        if tag == 0x0A:
            name = text(data, start, stop)
        elif tag == 0x12:
            version = text(data, start, stop)
    return name, version, attributes_in(data, pos, end, limit, tag=0x1A)


def links_in(
    data: bytes, pos: int, end: int, limit: int
) -> list[tuple[bytes, bytes, dict[str, Any]]]:
    """A span's ``Link`` s: (trace_id, span_id, attributes) each."""
    links = []
    for tag, start, stop in fields(data, pos, end):
        if tag != 0x6A:  # links (field 13)
            continue
        trace_id = span_id = b""
        for inner, begin, finish in fields(data, start, stop):
            if inner == 0x0A:
                trace_id = data[begin:finish]
            elif inner == 0x12:
                span_id = data[begin:finish]
        links.append((trace_id, span_id, attributes_in(data, start, stop, limit, tag=0x22)))
    return links
