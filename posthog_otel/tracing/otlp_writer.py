"""OTLP protobuf for finished SDK spans, written straight to bytes.

OpenTelemetry's own encoder (``opentelemetry-exporter-otlp-proto-common``) builds a tree of
generated protobuf objects per span and serialises it; on span batches that is most of an
export's CPU (``benchmarks/traces.py``). This writer emits the same
``ExportTraceServiceRequest`` wire bytes directly: spans grouped by resource, then by
instrumentation scope; every span field the stock encoder sets, with the same values (span
flags with the ``is_remote`` bits, status always present, kinds and status codes as in
``opentelemetry-proto``). ``tests/unit/tracing/test_otlp_writer.py`` parses its output and the
stock encoder's with opentelemetry-proto's generated classes and requires equal messages.

Attribute values: bool, str, int (int64; larger ones are written as their text), float,
bytes, sequences and mappings of these; a value of another type is skipped, as the stock
encoder does. Text that is not valid UTF-8 (lone surrogates) is written with replacement
characters.

Usage::

    body = encode_spans(spans)        # bytes of an ExportTraceServiceRequest
    body = encode_spans(spans, rule)  # without what the client's privacy rules leave out
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from .privacy import ExportRule

__all__ = ["encode_spans"]

_pack_q = struct.Struct("<Q").pack
_pack_d = struct.Struct("<d").pack
_pack_i = struct.Struct("<I").pack
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200
_KIND = {0: 1, 1: 2, 2: 3, 3: 4, 4: 5}  # opentelemetry.trace.SpanKind value -> proto enum
_SMALL = [bytes([n]) for n in range(128)]


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value] if value >= 0 else _varint(value & 0xFFFFFFFFFFFFFFFF)
    out = bytearray()
    while value > 127:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag`` (one byte for fields below 16), length, payload."""
    return tag + _varint(len(payload)) + payload


def _text(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace")


def _any_value(value: Any) -> bytes | None:
    """An ``AnyValue`` message body, or None for an unsupported value."""
    cls = value.__class__
    if cls is str:
        return _field(b"\x0a", _text(value))
    if cls is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if cls is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return b"\x18" + _varint(value)
        return _field(b"\x0a", _text(str(value)))
    if cls is float:
        return b"\x21" + _pack_d(value)
    if isinstance(value, str):
        return _field(b"\x0a", _text(str(value)))
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return _any_value(int(value))
    if isinstance(value, float):
        return b"\x21" + _pack_d(float(value))
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        items = [_any_value(item) for item in value]
        array = b"".join(_field(b"\x0a", item) for item in items if item is not None)
        return _field(b"\x2a", array)
    if isinstance(value, Mapping):
        pairs = b"".join(_key_value(str(key), item) for key, item in value.items())
        return _field(b"\x32", pairs)
    if value is None:
        return b""
    return None


def _key_value(key: str, value: Any) -> bytes:
    """A ``KeyValue`` message, length-prefixed as a repeated field 1 entry (or b"")."""
    body = _any_value(value)
    if body is None:
        return b""
    return _field(b"\x0a", _field(b"\x0a", _text(key)) + _field(b"\x12", body))


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Each attribute as a ``KeyValue`` field ``tag``."""
    if not attributes:
        return b""
    parts = []
    for key, value in attributes.items():
        body = _any_value(value)
        if body is not None:
            parts.append(_field(tag, _field(b"\x0a", _text(key)) + _field(b"\x12", body)))
    return b"".join(parts)


def _flags(parent: Any) -> bytes:
    flags = _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)
    return b"\x85\x01" + _pack_i(flags)  # field 16, fixed32


def _span(span: ReadableSpan, rule: ExportRule | None) -> bytes | None:
    context = span.get_span_context()
    if context is None:  # not a span the SDK made; nothing to identify it by
        return None
    parent = span.parent
    parts = [
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + context.span_id.to_bytes(8, "big"),
    ]
    trace_state = context.trace_state
    if trace_state:
        parts.append(_field(b"\x1a", _text(",".join(f"{k}={v}" for k, v in trace_state.items()))))
    if parent is not None:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    parts.append(_field(b"\x2a", _text(span.name)))
    parts.append(b"\x30" + _SMALL[_KIND[span.kind.value]])
    parts.append(b"\x39" + _pack_q(span.start_time or 0))
    parts.append(b"\x41" + _pack_q(span.end_time or 0))
    attributes = span.attributes
    if rule is not None:
        attributes = rule.span_attributes(attributes)
    parts.append(_attributes(b"\x4a", attributes))
    if span.dropped_attributes:
        parts.append(b"\x50" + _varint(span.dropped_attributes))
    for event in span.events:
        body = b"\x09" + _pack_q(event.timestamp) + _field(b"\x12", _text(event.name))
        event_attributes = event.attributes
        if rule is not None:
            event_attributes = rule.event_attributes(event.name, event_attributes)
        body += _attributes(b"\x1a", event_attributes)
        if event.dropped_attributes:
            body += b"\x20" + _varint(event.dropped_attributes)
        parts.append(_field(b"\x5a", body))
    if span.dropped_events:
        parts.append(b"\x60" + _varint(span.dropped_events))
    for link in span.links:
        linked = link.context
        body = b"\x0a\x10" + linked.trace_id.to_bytes(16, "big")
        body += b"\x12\x08" + linked.span_id.to_bytes(8, "big")
        body += _attributes(b"\x22", link.attributes)
        if link.dropped_attributes:
            body += b"\x28" + _varint(link.dropped_attributes)
        body += b"\x35" + _pack_i(_HAS_IS_REMOTE | (_IS_REMOTE if linked.is_remote else 0))
        parts.append(_field(b"\x6a", body))
    if span.dropped_links:
        parts.append(b"\x70" + _varint(span.dropped_links))
    status = span.status
    body = b""
    if status.description:
        body += _field(b"\x12", _text(status.description))
    if status.status_code.value:
        body += b"\x18" + _varint(status.status_code.value)
    parts.append(_field(b"\x7a", body))
    parts.append(_flags(parent))
    return b"".join(parts)


def _scope(scope: Any) -> bytes:
    if scope is None:
        return b""
    body = _field(b"\x0a", _text(scope.name)) if scope.name else b""
    if scope.version:
        body += _field(b"\x12", _text(scope.version))
    body += _attributes(b"\x1a", scope.attributes)
    return body


def encode_spans(spans: Sequence[ReadableSpan], rule: ExportRule | None = None) -> bytes:
    """The ``ExportTraceServiceRequest`` bytes for ``spans`` (see the module docstring);
    ``rule``: what attributes the client's privacy settings leave out (:mod:`.privacy`)."""
    if rule is not None and not rule.active:
        rule = None
    groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
    for span in spans:
        resource = span.resource
        scope = span.instrumentation_scope or None
        encoded = _span(span, rule)
        if encoded is None:
            continue
        by_scope = groups.setdefault(id(resource), (resource, {}))[1]
        by_scope.setdefault(id(scope), (scope, []))[1].append(encoded)
    out = []
    for resource, by_scope in groups.values():
        body = _field(b"\x0a", _attributes(b"\x0a", resource.attributes))
        for scope, written in by_scope.values():
            scope_spans = _field(b"\x0a", _scope(scope))
            scope_spans += b"".join(_field(b"\x12", span) for span in written)
            if scope is not None and scope.schema_url:
                scope_spans += _field(b"\x1a", _text(scope.schema_url))
            body += _field(b"\x12", scope_spans)
        if resource.schema_url:
            body += _field(b"\x1a", _text(resource.schema_url))
        out.append(_field(b"\x0a", body))
    return b"".join(out)
