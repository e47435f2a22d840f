"""What the logs export takes from OpenTelemetry's SDK and OTLP exporter internals.

Two things OpenTelemetry names private, read here only: the OTLP log encoder (queued log
records to an ``ExportLogsServiceRequest``, on the export thread) and the provider of a
``LoggingHandler`` already on the root logger.

The encoding is OpenTelemetry's own (``opentelemetry-exporter-otlp-proto-common``, what
``OTLPLogExporter`` sends); this module only puts the PostHog attributes chosen on the caller's
thread in front of the record's own attributes, through a read-only view, so the SDK's record
(which other processors of a shared provider also see) is never changed.
Usage (the log processor does this)::

    body = encode_batch([(sdk_record, {"posthogDistinctId": "u1"}), ...], excluded=None)
    handler_provider(handler)   # the SDK LoggerProvider a LoggingHandler emits to, or None
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

__all__ = ["Queued", "approx_size", "encode_batch", "handler_provider"]

# A record as queued: the SDK's record and the PostHog attributes to add (None: none).
Queued = tuple[Any, Mapping[str, Any] | None]

# Record fields PostHog's logging instrumentor sets for formatters (posthog_distinct_id, ...):
# the export carries the identity as attributes already, under the rules that apply to them.
_FORMATTER_FIELDS = frozenset({"posthog_distinct_id", "posthog_session_id"})
_PER_RECORD = 160  # timestamps, ids, severity, framing, code.* attribute names
_PER_ATTRIBUTE = 24


class _RecordView:
    """The SDK log record with other attributes; everything else read through."""

    __slots__ = ("_record", "attributes")

    def __init__(self, record: Any, attributes: Mapping[str, Any]) -> None:
        self._record = record
        self.attributes = attributes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._record, name)


class _ReadableView:
    __slots__ = ("dropped_attributes", "instrumentation_scope", "log_record", "resource")

    def __init__(self, data: Any, record: Any) -> None:
        self.log_record = record
        self.resource = data.resource
        self.instrumentation_scope = data.instrumentation_scope
        self.dropped_attributes = data.dropped_attributes


def _view(item: Queued, excluded: Callable[[str], bool] | None) -> Any:
    data, extra = item
    record = data.log_record
    own = record.attributes or {}
    if excluded is not None:
        own = {k: v for k, v in own.items() if k not in _FORMATTER_FIELDS and not excluded(k)}
    elif _FORMATTER_FIELDS.isdisjoint(own):
        if not extra:
            return data
    else:
        own = {k: v for k, v in own.items() if k not in _FORMATTER_FIELDS}
    attributes = {**extra, **own} if extra else own  # the record's own attributes win
    return _ReadableView(data, _RecordView(record, attributes))


def encode_batch(items: Sequence[Queued], excluded: Callable[[str], bool] | None) -> bytes:
    """The serialized request for ``items``; ``excluded``: attribute names left out."""
    body: bytes = encode_logs([_view(item, excluded) for item in items]).SerializeToString()
    return body


def approx_size(item: Queued) -> int:
    """A cheap estimate of a queued record's encoded size, for the byte-bounded queue."""
    data, extra = item
    record = data.log_record
    size = _PER_RECORD
    body = record.body
    size += len(body) if isinstance(body, str) else 64
    for attributes in (record.attributes, extra):
        if attributes:
            for key, value in attributes.items():
                size += _PER_ATTRIBUTE + len(key)
                if isinstance(value, str):
                    size += len(value)
    return size


def handler_provider(handler: Any) -> Any:
    """The SDK ``LoggerProvider`` an OpenTelemetry ``LoggingHandler`` emits to, or None."""
    provider = getattr(handler, "_logger_provider", None)  # the handler has no public name
    if provider is not None and hasattr(provider, "add_log_record_processor"):
        return provider
    return None
