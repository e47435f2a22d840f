"""Queued log records to an OTLP ``ExportLogsServiceRequest`` (protobuf bytes), on the export
thread, with opentelemetry-proto's generated classes.

Records are grouped by resource and instrumentation scope, as OTLP nests them. The PostHog
attributes of a context state (a :class:`Stamp`) are the same for every record logged in it:
they are encoded once per state and copied into each record; resources and scopes are encoded
once per object. A record's own attributes win over PostHog's on a clash. Attribute values
follow OTLP's ``AnyValue``: bool, int (as text beyond 64 bits), float, str, bytes, sequences
(arrays) and mappings (key-value lists); anything else is sent as its text.

Usage (the log processor does this)::

    encoder = LogEncoder(excluded=None)
    body = encoder.encode([(sdk_record, stamp({"posthogDistinctId": "u1"})), ...])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from ._sdk import plain_attributes

__all__ = ["FORMATTER_FIELDS", "LogEncoder", "Queued", "Stamp", "any_value", "approx_size", "stamp"]

_INT64 = (-(2**63), 2**63 - 1)
# Record fields PostHog's logging instrumentor sets for formatters (posthog_distinct_id, ...):
# the export carries the identity as attributes already, under the rules that apply to them.
FORMATTER_FIELDS = frozenset({"posthog_distinct_id", "posthog_session_id"})
_PER_RECORD = 160  # timestamps, ids, severity, framing
_PER_ATTRIBUTE = 24
_MAX_CACHED = 256  # resources and scopes kept encoded


class Stamp(dict[str, Any]):
    """The PostHog attributes of one context state, their estimated size, their encoding."""

    size = 0
    encoded: list[KeyValue] | None = None


# A record as queued: the SDK's record and the PostHog attributes to add (None: none).
Queued = tuple[Any, Stamp | None]


def stamp(attributes: Mapping[str, Any]) -> Stamp:
    made = Stamp(attributes)
    made.size = sum(
        _PER_ATTRIBUTE + len(key) + (len(value) if isinstance(value, str) else 8)
        for key, value in attributes.items()
    )
    return made


def any_value(value: Any) -> AnyValue:
    """``value`` as an OTLP ``AnyValue``."""
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            return AnyValue(int_value=value)
        return AnyValue(string_value=str(value))
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes | bytearray):
        return AnyValue(bytes_value=bytes(value))
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    if isinstance(value, Sequence):
        return AnyValue(array_value=ArrayValue(values=[any_value(item) for item in value]))
    return AnyValue(string_value=str(value))


def key_values(attributes: Mapping[Any, Any]) -> list[KeyValue]:
    return [KeyValue(key=str(key), value=any_value(value)) for key, value in attributes.items()]


def approx_size(item: Queued) -> int:
    """A cheap estimate of a queued record's encoded size, for the byte-bounded queue: the
    body, the PostHog attributes, a stack trace, and a fixed share per other attribute."""
    data, extra = item
    record = data.log_record
    body = record.body
    size = _PER_RECORD + (len(body) if isinstance(body, str) else 64)
    own = plain_attributes(record.attributes)
    size += _PER_ATTRIBUTE * 2 * len(own)
    trace = own.get("exception.stacktrace")
    if isinstance(trace, str):
        size += len(trace)
    if extra:
        size += extra.size
    return size


class LogEncoder:
    """Encodes batches for one processor; ``excluded``: attribute names left out."""

    def __init__(self, excluded: Callable[[str], bool] | None = None) -> None:
        self._excluded = excluded
        self._resources: dict[int, tuple[Any, Resource]] = {}
        self._scopes: dict[int, tuple[Any, InstrumentationScope]] = {}

    def encode(self, items: Sequence[Queued]) -> bytes:
        groups: dict[tuple[int, int], tuple[Any, Any, list[LogRecord]]] = {}
        for data, extra in items:
            resource, scope = data.resource, data.instrumentation_scope
            key = (id(resource), id(scope))
            group = groups.get(key)
            if group is None:
                group = groups[key] = (resource, scope, [])
            group[2].append(self._record(data, extra))
        request = ExportLogsServiceRequest()
        by_resource: dict[int, ResourceLogs] = {}
        for resource, scope, records in groups.values():
            resource_logs = by_resource.get(id(resource))
            if resource_logs is None:
                resource_logs = request.resource_logs.add()
                if resource is not None:
                    resource_logs.resource.CopyFrom(self._resource(resource))
                    resource_logs.schema_url = getattr(resource, "schema_url", "") or ""
                by_resource[id(resource)] = resource_logs
            scope_logs: ScopeLogs = resource_logs.scope_logs.add()
            if scope is not None:
                scope_logs.scope.CopyFrom(self._scope(scope))
                scope_logs.schema_url = getattr(scope, "schema_url", "") or ""
            scope_logs.log_records.extend(records)
        body: bytes = request.SerializeToString()
        return body

    def _record(self, data: Any, extra: Stamp | None) -> LogRecord:
        record = data.log_record
        own = plain_attributes(record.attributes)
        excluded = self._excluded
        if excluded is not None:
            own = {k: v for k, v in own.items() if k not in FORMATTER_FIELDS and not excluded(k)}
        elif not FORMATTER_FIELDS.isdisjoint(own):
            own = {k: v for k, v in own.items() if k not in FORMATTER_FIELDS}
        severity = record.severity_number
        trace_id, span_id = record.trace_id, record.span_id
        encoded = LogRecord(
            time_unix_nano=record.timestamp or 0,
            observed_time_unix_nano=record.observed_timestamp or 0,
            severity_text=record.severity_text or "",
            flags=int(record.trace_flags or 0),
            trace_id=trace_id.to_bytes(16, "big") if trace_id else b"",
            span_id=span_id.to_bytes(8, "big") if span_id else b"",
            event_name=record.event_name or "",
            dropped_attributes_count=data.dropped_attributes,
            attributes=key_values(own),
        )
        if severity is not None:
            encoded.severity_number = severity.value
        if record.body is not None:
            encoded.body.CopyFrom(any_value(record.body))
        if extra:
            if extra.encoded is None:
                extra.encoded = key_values(extra)
            if own and not own.keys().isdisjoint(extra):  # the record's own win
                encoded.attributes.extend(kv for kv in extra.encoded if kv.key not in own)
            else:
                encoded.attributes.extend(extra.encoded)
        return encoded

    def _resource(self, resource: Any) -> Resource:
        cached = self._resources.get(id(resource))
        if cached is not None and cached[0] is resource:
            return cached[1]
        encoded = Resource(attributes=key_values(resource.attributes))
        if len(self._resources) >= _MAX_CACHED:
            self._resources.clear()
        self._resources[id(resource)] = (resource, encoded)
        return encoded

    def _scope(self, scope: Any) -> InstrumentationScope:
        cached = self._scopes.get(id(scope))
        if cached is not None and cached[0] is scope:
            return cached[1]
        encoded = InstrumentationScope(
            name=scope.name or "",
            version=scope.version or "",
            attributes=key_values(scope.attributes or {}),
        )
        if len(self._scopes) >= _MAX_CACHED:
            self._scopes.clear()
        self._scopes[id(scope)] = (scope, encoded)
        return encoded
