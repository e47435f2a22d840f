"""Reading an ``ExportLogsServiceRequest`` straight from the wire (see :mod:`._wire`).

Usage::

    for resource, block, start, end in export_items(body):   # from ._wire_traces
        head = log_head(body, start, end)                 # every field but the attributes
        attributes = attributes_in(body, start, end, limit=128, tag=0x32)
"""

from __future__ import annotations

from typing import NamedTuple

from ._wire import U64, WireError, skip, text, varint

__all__ = ["LOG_ATTRIBUTES", "LogHead", "log_head"]

#: The tag of ``LogRecord.attributes`` (field 6), for :func:`._wire.attributes_in`.
LOG_ATTRIBUTES = 0x32


class LogHead(NamedTuple):
    """A log record's fields; the body is only located."""

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
    severity_text = event = ""
    body: tuple[int, int] | None = None
    trace_id = span_id = b""
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag == 0x09 or tag == 0x59:
            if pos + 8 > end:
                raise WireError("log time runs past the end of the record")
            if tag == 0x09:
                time_ns = U64(data, pos)[0]
            else:
                observed = U64(data, pos)[0]
            pos += 8
        elif tag == 0x10:
            severity, pos = varint(data, pos)
        elif tag < 8:
            raise WireError("field number 0 is not valid protobuf")
        elif tag & 7 == 2 and tag < 0x80:
            size, pos = varint(data, pos)
            stop = pos + size
            if stop > end:
                raise WireError("log record field runs past the end of the record")
            if tag == 0x1A:
                severity_text = text(data, pos, stop)
            elif tag == 0x2A:
                body = (pos, stop)
            elif tag == 0x4A:
                trace_id = data[pos:stop]
            elif tag == 0x52:
                span_id = data[pos:stop]
            elif tag == 0x62:
                event = text(data, pos, stop)
            pos = stop
        else:
            if tag > 0x7F:
                tag, pos = varint(data, pos - 1)
            pos = skip(data, pos, tag, end)
    if pos != end:
        raise WireError("log record runs past its end")
    return LogHead(time_ns, observed, severity, severity_text, body, trace_id, span_id, event)
