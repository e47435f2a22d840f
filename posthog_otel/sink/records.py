"""The row the sink stores for every event, log record or span it receives, accepted or not.

Ingestion (:mod:`.ingest`, :mod:`.otlp`) builds :class:`Record` objects, the store
(:mod:`.store`) writes them and reads them back as :class:`StoredEvent`, and the viewer and the
JSON API render those.

Usage::

    record = Record(kind=KIND_EVENT, endpoint="/batch/", event="signed_up", distinct_id="u1")
    record.reject("invalid_uuid", "uuid 'x' is not a valid UUID")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KINDS",
    "KIND_EVENT",
    "KIND_OTLP_LOG",
    "KIND_OTLP_SPAN",
    "STATUS_ACCEPTED",
    "STATUS_REJECTED",
    "Record",
    "StoredEvent",
]

KIND_EVENT = "event"
KIND_OTLP_LOG = "otlp_log"
KIND_OTLP_SPAN = "otlp_span"
KINDS = (KIND_EVENT, KIND_OTLP_LOG, KIND_OTLP_SPAN)

STATUS_ACCEPTED = "accepted"
STATUS_REJECTED = "rejected"


@dataclass
class Record:
    """One received item, ready to store. ``raw`` is what the sender sent for it."""

    kind: str
    endpoint: str
    status: str = STATUS_ACCEPTED
    code: str | None = None
    reason: str | None = None
    api_key: str | None = None
    uuid: str | None = None
    event: str | None = None
    distinct_id: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    timestamp: str | None = None
    ts: float | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    raw: Any = None
    warnings: list[str] = field(default_factory=list)

    def reject(self, code: str, reason: str) -> None:
        """Mark the record rejected (keeps the first reason when rejected twice)."""
        if self.status != STATUS_REJECTED:
            self.status = STATUS_REJECTED
            self.code = code
            self.reason = reason


@dataclass(frozen=True)
class StoredEvent:
    """A record as read back from the store, with its row id and arrival time."""

    id: int
    received_at: float
    kind: str
    endpoint: str
    status: str
    code: str | None
    reason: str | None
    api_key: str | None
    uuid: str | None
    event: str | None
    distinct_id: str | None
    session_id: str | None
    trace_id: str | None
    span_id: str | None
    timestamp: str | None
    ts: float | None
    properties: dict[str, Any]
    raw: Any
    warnings: list[str]

    @property
    def rejected(self) -> bool:
        return self.status == STATUS_REJECTED

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of ``GET /api/events``."""
        return {
            "id": self.id,
            "received_at": self.received_at,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "status": self.status,
            "code": self.code,
            "reason": self.reason,
            "api_key": self.api_key,
            "uuid": self.uuid,
            "event": self.event,
            "distinct_id": self.distinct_id,
            "session_id": self.session_id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "timestamp": self.timestamp,
            "properties": self.properties,
            "raw": self.raw,
            "warnings": self.warnings,
        }
