"""A small protobuf wire-format reader for the OTLP messages the bridge needs.

Why not the generated classes: ``upb`` parses fast, but every field read from Python then
builds a wrapper object, and a span's attributes cost about 2 µs each that way (40 µs for a
20-attribute span). Reading the wire format directly costs about a fifth of that, and lets
the bridge stop reading a span after its ids, name and kind (which encoders write first) when
it will not become an event; such a span is checked only for fitting in its message.
Attribute entries (``KeyValue`` records) repeat across spans, so decoded scalar entries are
cached by their encoded bytes.

Only the fields the bridge uses are decoded; everything else is skipped by wire type, as
protobuf parsers do with unknown fields. Malformed input (truncation, lengths past their
message, invalid UTF-8, groups, nesting deeper than 64) raises :class:`WireError`. Where a
singular message field occurs more than once, the last occurrence wins (protobuf would merge;
no OTLP encoder writes that).

Usage (see :mod:`.decode`)::

    for resource, start, end in trace_spans(body):      # body: bytes
        prefix = span_prefix(body, start, end)           # ids, name, kind: is it wanted?
        head = span_head(body, start, end, limit=128)    # everything, attributes decoded
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

__all__ = [
    "ALWAYS_KEPT",
    "LogHead",
    "SpanHead",
    "WireError",
    "attributes_in",
    "event_in",
    "log_head",
    "log_records",
    "resource_attributes",
    "span_head",
    "span_prefix",
    "status_in",
    "trace_spans",
]

_U64 = struct.Struct("<Q").unpack_from
_U32 = struct.Struct("<I").unpack_from
_F64 = struct.Struct("<d").unpack_from
_MAX_DEPTH = 64
_CACHE_LIMIT = 20_000  # entries; cleared when full (worst case ~10 MB)
_CACHEABLE_BYTES = 256
#: Attribute key prefixes kept past the attribute limit: identity, the event marker, exceptions.
ALWAYS_KEPT = ("posthog", "user.id", "enduser.id", "session.id", "sessionId", "exception.")

# Decoded scalar KeyValue entries by their encoded bytes (shared by all requests of a process).
_kv_cache: dict[bytes, tuple[str, Any]] = {}


class WireError(ValueError):
    """Bytes that are not a valid encoding of the expected message."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def _skip(data: bytes, pos: int, tag: int, end: int) -> int:
    """Step over the value of a field with ``tag`` starting at ``pos``."""
    wire = tag & 7
    if wire == 0:
        _, pos = _varint(data, pos)
    elif wire == 2:
        size, pos = _varint(data, pos)
        pos += size
    elif wire == 1:
        pos += 8
    elif wire == 5:
        pos += 4
    else:
        raise WireError(f"unsupported wire type {wire}")
    if pos > end:
        raise WireError("field runs past the end of its message")
    return pos


def _fields(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(tag, value start, value end) of each length-delimited field; other fields skipped."""
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag > 0x7F:
            tag, pos = _varint(data, pos - 1)
        if tag & 7 == 2:
            size = data[pos]
            pos += 1
            if size > 0x7F:
                size, pos = _varint(data, pos - 1)
            stop = pos + size
            if stop > end:
                raise WireError("field runs past the end of its message")
            yield tag, pos, stop
            pos = stop
        else:
            pos = _skip(data, pos, tag, end)
    if pos != end:
        raise WireError("message runs past its end")


def _text(data: bytes, start: int, stop: int) -> str:
    try:
        return data[start:stop].decode("utf-8")
    except UnicodeDecodeError:
        raise WireError("a string field is not valid UTF-8") from None


# --------------------------------------------------------------------------- values


def _any_value(data: bytes, pos: int, end: int, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise WireError("values nested too deeply")
    value: Any = None
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag == 0x0A:  # string_value
            size = data[pos]
            pos += 1
            if size > 0x7F:
                size, pos = _varint(data, pos - 1)
            if pos + size > end:
                raise WireError("string runs past the end of its value")
            value = _text(data, pos, pos + size)
            pos += size
        elif tag == 0x10:  # bool_value
            number, pos = _varint(data, pos)
            value = number != 0
        elif tag == 0x18:  # int_value (int64, two's complement)
            number, pos = _varint(data, pos)
            number &= 0xFFFFFFFFFFFFFFFF
            value = number - (1 << 64) if number >= 1 << 63 else number
        elif tag == 0x21:  # double_value
            if pos + 8 > end:
                raise WireError("double runs past the end of its value")
            value = _F64(data, pos)[0]
            pos += 8
        elif tag in (0x2A, 0x32, 0x3A):  # array_value, kvlist_value, bytes_value
            size, pos = _varint(data, pos)
            stop = pos + size
            if stop > end:
                raise WireError("value runs past its end")
            if tag == 0x2A:
                value = [
                    _any_value(data, start, stop_, depth + 1)
                    for t, start, stop_ in _fields(data, pos, stop)
                    if t == 0x0A
                ]
            elif tag == 0x32:
                value = dict(
                    _key_value(data, start, stop_, depth + 1)
                    for t, start, stop_ in _fields(data, pos, stop)
                    if t == 0x0A
                )
            else:
                value = base64.b64encode(data[pos:stop]).decode()
            pos = stop
        else:
            if tag > 0x7F:
                tag, pos = _varint(data, pos - 1)
            pos = _skip(data, pos, tag, end)
    if pos != end:
        raise WireError("value runs past its end")
    return value


def _key_value(data: bytes, pos: int, end: int, depth: int = 0) -> tuple[str, Any]:
    key = ""
    value: Any = None
    for tag, start, stop in _fields(data, pos, end):
        if tag == 0x0A:
            key = _text(data, start, stop)
        elif tag == 0x12:
            value = _any_value(data, start, stop, depth)
    return key, value


def attributes_in(data: bytes, pos: int, end: int, limit: int, tag: int = 0x4A) -> dict[str, Any]:
    """The ``KeyValue`` fields with ``tag`` between ``pos`` and ``end`` (other fields in the
    range are stepped over) as a dict; past ``limit`` entries only identity, marker and
    exception keys are kept."""
    out: dict[str, Any] = {}
    cache = _kv_cache
    count = 0
    while pos < end:
        field_tag = data[pos]
        pos += 1
        if field_tag != tag:
            if field_tag > 0x7F:
                field_tag, pos = _varint(data, pos - 1)
            pos = _skip(data, pos, field_tag, end)
            continue
        size = data[pos]
        pos += 1
        if size > 0x7F:
            size, pos = _varint(data, pos - 1)
        stop = pos + size
        if stop > end:
            raise WireError("attribute runs past the end of its message")
        raw = data[pos:stop]
        entry = cache.get(raw)
        if entry is None:
            entry = _key_value(data, pos, stop)
            if size <= _CACHEABLE_BYTES and not isinstance(entry[1], list | dict):
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[raw] = entry
        pos = stop
        key, value = entry
        count += 1
        if count > limit and not key.startswith(ALWAYS_KEPT):
            continue
        out[key] = value
    return out


# --------------------------------------------------------------------------- traces


def resource_attributes(data: bytes, pos: int, end: int, limit: int) -> dict[str, Any]:
    """Attributes of a ``Resource`` message (field 1)."""
    return attributes_in(data, pos, end, limit, tag=0x0A)


def trace_spans(data: bytes) -> Iterator[tuple[tuple[int, int] | None, int, int]]:
    """(resource range or None, span start, span end) for each span of an
    ``ExportTraceServiceRequest``."""
    for tag, start, stop in _fields(data, 0, len(data)):
        if tag != 0x0A:  # resource_spans
            continue
        resource: tuple[int, int] | None = None
        scopes: list[tuple[int, int]] = []
        for inner, begin, finish in _fields(data, start, stop):
            if inner == 0x0A:
                resource = (begin, finish)
            elif inner == 0x12:
                scopes.append((begin, finish))
        for begin, finish in scopes:
            for inner, span_start, span_stop in _fields(data, begin, finish):
                if inner == 0x12:  # spans
                    yield resource, span_start, span_stop


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
    cache = _kv_cache
    events: list[tuple[int, int]] = []
    exceptions = 0
    status: tuple[int, int] | None = None
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag == 0x4A:  # attributes: the bulk of a span, so first and tight
            size = data[pos]
            pos += 1
            if size > 0x7F:
                size, pos = _varint(data, pos - 1)
            stop = pos + size
            if stop > end:
                raise WireError("attribute runs past the end of the span")
            raw = data[pos:stop]
            entry = cache.get(raw)
            if entry is None:
                entry = _key_value(data, pos, stop)
                if size <= _CACHEABLE_BYTES and not isinstance(entry[1], list | dict):
                    if len(cache) >= _CACHE_LIMIT:
                        cache.clear()
                    cache[raw] = entry
            pos = stop
            key, value = entry
            count += 1
            if count <= limit or key.startswith(ALWAYS_KEPT):
                attributes[key] = value
            continue
        if tag == 0x39:  # start_time_unix_nano
            start_time = _U64(data, pos)[0]
            pos += 8
        elif tag == 0x41:  # end_time_unix_nano
            end_time = _U64(data, pos)[0]
            pos += 8
        elif tag == 0x30:  # kind
            kind, pos = _varint(data, pos)
        elif tag & 7 == 2:
            size = data[pos]
            pos += 1
            if size > 0x7F:
                size, pos = _varint(data, pos - 1)
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
                name = _text(data, pos, stop)
            elif tag == 0x5A:  # events
                events.append((pos, stop))
                if _EXCEPTION_NAME in data[pos:stop] and event_name(data, pos, stop) == "exception":
                    exceptions += 1
            elif tag == 0x7A:
                status = (pos, stop)
            pos = stop
        elif tag == 0x85 and data[pos] == 0x01:  # flags (field 16, fixed32)
            flags = _U32(data, pos + 1)[0]
            pos += 5
        else:
            if tag > 0x7F:
                tag, pos = _varint(data, pos - 1)
            pos = _skip(data, pos, tag, end)
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
            kind, pos = _varint(data, pos)
        elif tag == 0x39 or tag == 0x41:
            pos += 8
        elif tag == 0x1A or tag == 0x0A or tag == 0x12 or tag == 0x22 or tag == 0x2A:
            size = data[pos]
            pos += 1
            if size > 0x7F:
                size, pos = _varint(data, pos - 1)
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
                name = _text(data, pos, stop)
            pos = stop
        else:
            break
    if not trace_id or not span_id or not name:
        return None
    return trace_id, span_id, parent, name, kind


def event_name(data: bytes, pos: int, end: int) -> str:
    for tag, start, stop in _fields(data, pos, end):
        if tag == 0x12:
            return _text(data, start, stop)
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
            timestamp = _U64(data, scan)[0]
            scan += 8
        elif tag == 0x12:
            size, scan = _varint(data, scan)
            if scan + size > end:
                raise WireError("event name runs past the end of the event")
            name = _text(data, scan, scan + size)
            scan += size
        else:
            if tag > 0x7F:
                tag, scan = _varint(data, scan - 1)
            scan = _skip(data, scan, tag, end)
    return name, timestamp, attributes_in(data, pos, end, limit, tag=0x1A)


def status_in(data: bytes, pos: int, end: int) -> tuple[int, str]:
    """A ``Status``: (code, message)."""
    code = 0
    message = ""
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag == 0x18:
            code, pos = _varint(data, pos)
        elif tag == 0x12:
            size, pos = _varint(data, pos)
            if pos + size > end:
                raise WireError("status message runs past the end of the status")
            message = _text(data, pos, pos + size)
            pos += size
        else:
            if tag > 0x7F:
                tag, pos = _varint(data, pos - 1)
            pos = _skip(data, pos, tag, end)
    return code, message


# --------------------------------------------------------------------------- logs


def log_records(data: bytes) -> Iterator[tuple[tuple[int, int] | None, int, int]]:
    """(resource range or None, record start, record end) for each record of an
    ``ExportLogsServiceRequest``."""
    yield from trace_spans(data)  # same shape: resource 1, scopes 2, items 2


class LogHead(NamedTuple):
    time: int
    observed_time: int
    severity_number: int
    severity_text: str
    body: tuple[int, int] | None
    trace_id: bytes
    span_id: bytes
    event_name: str


def log_head(data: bytes, pos: int, end: int) -> LogHead:
    """A ``LogRecord``'s fields except its attributes (read those with
    ``attributes_in(data, pos, end, limit, tag=0x32)``)."""
    time_ns = observed = severity = 0
    text = event = ""
    body: tuple[int, int] | None = None
    trace_id = span_id = b""
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag == 0x09 or tag == 0x59:
            if pos + 8 > end:
                raise WireError("log time runs past the end of the record")
            if tag == 0x09:
                time_ns = _U64(data, pos)[0]
            else:
                observed = _U64(data, pos)[0]
            pos += 8
        elif tag == 0x10:
            severity, pos = _varint(data, pos)
        elif tag & 7 == 2 and tag < 0x80:
            size, pos = _varint(data, pos)
            stop = pos + size
            if stop > end:
                raise WireError("log record field runs past the end of the record")
            if tag == 0x1A:
                text = _text(data, pos, stop)
            elif tag == 0x2A:
                body = (pos, stop)
            elif tag == 0x4A:
                trace_id = data[pos:stop]
            elif tag == 0x52:
                span_id = data[pos:stop]
            elif tag == 0x62:
                event = _text(data, pos, stop)
            pos = stop
        else:
            if tag > 0x7F:
                tag, pos = _varint(data, pos - 1)
            pos = _skip(data, pos, tag, end)
    if pos != end:
        raise WireError("log record runs past its end")
    return LogHead(time_ns, observed, severity, text, body, trace_id, span_id, event)


def any_value(data: bytes, pos: int, end: int) -> Any:
    """An ``AnyValue`` message as plain Python."""
    return _any_value(data, pos, end, 0)
