"""A small protobuf wire-format reader: the primitives, ``AnyValue`` and ``KeyValue``.

Why not the generated classes: ``upb`` parses fast, but every field read from Python then
builds a wrapper object, and a span's attributes cost about 2 µs each that way (40 µs for a
20-attribute span). Reading the wire format directly costs about a fifth of that (see
``benchmarks/bridge.py``). Attribute entries (``KeyValue`` records) repeat across spans, so
decoded scalar entries are cached by their encoded bytes.

Speed, on purpose: the loops that read a tag or a length copy the first step of
:func:`varint` inline (``size = data[pos]; if size > 0x7F: size, pos = varint(...)``) in
:func:`fields`, :func:`attributes_in`, the ``AnyValue`` reader and :mod:`._wire_traces`'
``span_head`` / ``span_prefix``, instead of calling one helper. Nearly every tag and length
fits in one byte, and a Python function call per field is a large share of the cost of
reading a small field; keep the copies alike when changing one.

Messages are read by :mod:`._wire_traces` and :mod:`._wire_logs` with these pieces. Fields a
reader does not use are skipped by wire type, as protobuf parsers do with unknown fields.
Malformed input (truncation, lengths past their message, invalid UTF-8, groups, field number
0, nesting deeper than 64) raises :class:`WireError`. Where a singular field occurs more than once, the last
occurrence wins (protobuf would merge messages; no OTLP encoder writes that).

Usage::

    for tag, start, stop in fields(body, 0, len(body)):       # length-delimited fields
        if tag == 0x0A:
            attributes = attributes_in(body, start, stop, limit=128, tag=0x0A)
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any

from .keys import ALWAYS_KEPT

__all__ = [
    "F64",
    "KV_CACHE",
    "U32",
    "U64",
    "WireError",
    "any_value",
    "attributes_in",
    "decode_entry",
    "fields",
    "skip",
    "text",
    "varint",
]

U64 = struct.Struct("<Q").unpack_from
U32 = struct.Struct("<I").unpack_from
F64 = struct.Struct("<d").unpack_from
_MAX_DEPTH = 64
_CACHE_LIMIT = 20_000  # entries; cleared when full (worst case ~10 MB)
_CACHEABLE_BYTES = 256
#: Decoded scalar ``KeyValue`` entries by their encoded bytes (shared by all requests).
KV_CACHE: dict[bytes, tuple[str, Any]] = {}


class WireError(ValueError):
    """Bytes that are not a valid encoding of the expected message."""


def varint(data: bytes, pos: int) -> tuple[int, int]:
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


def skip(data: bytes, pos: int, tag: int, end: int) -> int:
    """Step over the value of a field with ``tag`` starting at ``pos``.

    Every reader's unknown fields pass here, so this is where field number 0 (never valid in
    protobuf) is refused.
    """
    if tag < 8:
        raise WireError("field number 0 is not valid protobuf")
    wire = tag & 7
    if wire == 0:
        _, pos = varint(data, pos)
    elif wire == 2:
        size, pos = varint(data, pos)
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


def fields(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(tag, value start, value end) of each length-delimited field; other fields skipped."""
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag > 0x7F:
            tag, pos = varint(data, pos - 1)
        if tag < 8:
            raise WireError("field number 0 is not valid protobuf")
        if tag & 7 == 2:
            # varint inlined on purpose (one byte in the common case): see _wire's docstring
            size = data[pos]
            pos += 1
            if size > 0x7F:
                size, pos = varint(data, pos - 1)
            stop = pos + size
            if stop > end:
                raise WireError("field runs past the end of its message")
            yield tag, pos, stop
            pos = stop
        else:
            pos = skip(data, pos, tag, end)
    if pos != end:
        raise WireError("message runs past its end")


def text(data: bytes, start: int, stop: int) -> str:
    try:
        return data[start:stop].decode("utf-8")
    except UnicodeDecodeError:
        raise WireError("a string field is not valid UTF-8") from None


# --------------------------------------------------------------------------- values


def _any_value_at(data: bytes, pos: int, end: int, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise WireError("values nested too deeply")
    value: Any = None
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag == 0x0A:  # string_value
            # varint inlined on purpose (one byte in the common case): see _wire's docstring
            size = data[pos]
            pos += 1
            if size > 0x7F:
                size, pos = varint(data, pos - 1)
            if pos + size > end:
                raise WireError("string runs past the end of its value")
            value = text(data, pos, pos + size)
            pos += size
        elif tag == 0x10:  # bool_value
            number, pos = varint(data, pos)
            value = number != 0
        elif tag == 0x18:  # int_value (int64, two's complement)
            number, pos = varint(data, pos)
            number &= 0xFFFFFFFFFFFFFFFF
            value = number - (1 << 64) if number >= 1 << 63 else number
        elif tag == 0x21:  # double_value
            if pos + 8 > end:
                raise WireError("double runs past the end of its value")
            value = F64(data, pos)[0]
            pos += 8
        elif tag in (0x2A, 0x32, 0x3A):  # array_value, kvlist_value, bytes_value
            size, pos = varint(data, pos)
            stop = pos + size
            if stop > end:
                raise WireError("value runs past its end")
            if tag == 0x2A:
                value = [
                    _any_value_at(data, start, stop_, depth + 1)
                    for t, start, stop_ in fields(data, pos, stop)
                    if t == 0x0A
                ]
            elif tag == 0x32:
                value = dict(
                    _key_value(data, start, stop_, depth + 1)
                    for t, start, stop_ in fields(data, pos, stop)
                    if t == 0x0A
                )
            else:
                value = base64.b64encode(data[pos:stop]).decode()
            pos = stop
        else:
            if tag > 0x7F:
                tag, pos = varint(data, pos - 1)
            pos = skip(data, pos, tag, end)
    if pos != end:
        raise WireError("value runs past its end")
    return value


def _key_value(data: bytes, pos: int, end: int, depth: int = 0) -> tuple[str, Any]:
    # fields() inlined (every attribute of every span passes here): the same checks, in order
    key = ""
    value: Any = None
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag == 0x0A or tag == 0x12:  # key, value
            size = data[pos]
            pos += 1
            if size > 0x7F:
                size, pos = varint(data, pos - 1)
            stop = pos + size
            if stop > end:
                raise WireError("field runs past the end of its message")
            if tag == 0x0A:
                key = text(data, pos, stop)
            else:
                value = _any_value_at(data, pos, stop, depth)
            pos = stop
            continue
        if tag > 0x7F:
            tag, pos = varint(data, pos - 1)
        if tag & 7 == 2 and tag >= 8:  # another length-delimited field: as fields() bounds it
            size, pos = varint(data, pos)
            if pos + size > end:
                raise WireError("field runs past the end of its message")
            pos += size
        else:
            pos = skip(data, pos, tag, end)
    if pos != end:
        raise WireError("message runs past its end")
    return key, value


def decode_entry(data: bytes, pos: int, stop: int, raw: bytes) -> tuple[str, Any]:
    """Decode the ``KeyValue`` at ``pos:stop`` (whose bytes are ``raw``) and cache it when it
    is small and scalar. Callers look in :data:`KV_CACHE` first."""
    entry = _key_value(data, pos, stop)
    if stop - pos <= _CACHEABLE_BYTES and not isinstance(entry[1], list | dict):
        if len(KV_CACHE) >= _CACHE_LIMIT:
            KV_CACHE.clear()
        KV_CACHE[raw] = entry
    return entry


def attributes_in(data: bytes, pos: int, end: int, limit: int, tag: int = 0x4A) -> dict[str, Any]:
    """The ``KeyValue`` fields with ``tag`` between ``pos`` and ``end`` (other fields in the
    range are stepped over) as a dict; past ``limit`` entries only identity, marker and
    exception keys are kept."""
    out: dict[str, Any] = {}
    cache = KV_CACHE
    count = 0
    while pos < end:
        field_tag = data[pos]
        pos += 1
        if field_tag != tag:
            if field_tag > 0x7F:
                field_tag, pos = varint(data, pos - 1)
            pos = skip(data, pos, field_tag, end)
            continue
        # varint inlined on purpose (one byte in the common case): see _wire's docstring
        size = data[pos]
        pos += 1
        if size > 0x7F:
            size, pos = varint(data, pos - 1)
        stop = pos + size
        if stop > end:
            raise WireError("attribute runs past the end of its message")
        raw = data[pos:stop]
        entry = cache.get(raw)
        if entry is None:
            entry = decode_entry(data, pos, stop, raw)
        pos = stop
        key, value = entry
        count += 1
        if count > limit and not key.startswith(ALWAYS_KEPT):
            continue
        out[key] = value
    return out


def any_value(data: bytes, pos: int, end: int) -> Any:
    """An ``AnyValue`` message as plain Python (bytes as base64 text, as OTLP JSON has them)."""
    return _any_value_at(data, pos, end, 0)
