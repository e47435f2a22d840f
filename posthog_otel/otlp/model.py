"""The decoded objects: spans and log records as the bridge maps them, and a request's counts.

:class:`DecodedSpan` has the attributes :class:`~posthog_otel.spans.mapping.SpanMapper` reads
from an SDK ``ReadableSpan`` (``name``, ``kind``, ``context``, ``parent``, ``status``,
``attributes``, ``events``, ``resource``, ...), so the bridge maps spans with exactly the rules
the in-process exporter uses. Built by :mod:`.decode`.

Usage::

    span = DecodedSpan(name, SpanKind.SERVER, SpanIds(trace_id, span_id), None, start, end,
                       SpanStatus(StatusCode.UNSET, ""), attributes, (), ResourceData({}))
    batch: Batch[DecodedSpan] = Batch(); batch.reject("span without a name")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

from opentelemetry.trace import SpanKind, StatusCode

__all__ = [
    "KINDS",
    "STATUS_CODES",
    "Batch",
    "DecodeError",
    "DecodedLog",
    "DecodedSpan",
    "ParentContext",
    "ResourceData",
    "SpanEventData",
    "SpanIds",
    "SpanStatus",
    "parent_is_remote",
]

T = TypeVar("T")

#: OTLP ``SpanKind`` numbers: 0 unspecified, 1 internal, 2 server, 3 client, 4 producer, 5 consumer
KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
#: OTLP ``Status.code`` numbers
STATUS_CODES = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}
# SpanFlags: bit 8 says whether bit 9 (the parent is remote) is known
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200


class DecodeError(ValueError):
    """The body is not an OTLP export request of the expected kind (answer 400)."""


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


def parent_is_remote(flags: int) -> bool:
    """Whether a span's parent is in another process. Senders that do not say (older SDKs)
    get True: the only spans this matters for are SERVER and CONSUMER spans, whose parent is
    almost always the CLIENT or PRODUCER span of another service."""
    if flags & _HAS_IS_REMOTE:
        return bool(flags & _IS_REMOTE)
    return True
