"""GenAI content sent as log records, joined to its span by trace and span id.

Contrib's ``openai-v2`` (default mode, and ``event_only`` under the latest conventions) and
``opentelemetry-util-genai`` send prompts and completions as log records (``gen_ai.user.message``,
``gen_ai.system.message``, ``gen_ai.assistant.message``, ``gen_ai.tool.message``,
``gen_ai.choice``, ``gen_ai.client.inference.operation.details``) emitted while the model call's
span is open, with that span's ids. :class:`PosthogGenAiLogProcessor` keeps those records (only
those) in :data:`CONTENT`, keyed by ``(trace_id, span_id)``; when the span's AI event is made,
:func:`claim` hands them to the mapping as span events. The OTLP bridge fills the same store
from ``/v1/logs``, so records that reach it before their span (the SDK's log batch is sent every
second, the span batch every five) join it; for records that come after it, the bridge holds the
generation briefly and claims them when they arrive (``posthog_otel.bridge.genai_wait``).

Usage::

    from opentelemetry.sdk._logs import LoggerProvider
    from posthog_otel import PosthogGenAiLogProcessor

    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(PosthogGenAiLogProcessor())
    OpenAIInstrumentor().instrument(tracer_provider=..., logger_provider=logger_provider)

Bounds: at most :data:`MAX_SPANS` spans' records (oldest first out), :data:`MAX_RECORDS` per span,
each kept :data:`MAX_AGE_SECONDS` at most; a record whose span never becomes an AI event (not
sampled, LLM analytics off) is forgotten that way. With LLM analytics off or privacy mode on,
the processor keeps nothing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import global_client

if TYPE_CHECKING:
    from ..client import Client

__all__ = [
    "CONTENT",
    "ContentStore",
    "GenAiRecord",
    "PosthogGenAiLogProcessor",
    "claim",
    "is_genai_record",
]

MAX_SPANS = 4096
MAX_RECORDS = 256
MAX_AGE_SECONDS = 120.0


class GenAiRecord(NamedTuple):
    """A GenAI log record as the mapping reads span events: ``name`` and ``attributes``
    (the record's attributes with its body's fields over them)."""

    name: str
    attributes: Mapping[str, Any]


def is_genai_record(event_name: str | None) -> bool:
    return bool(event_name) and str(event_name).startswith("gen_ai.")


def record_event(event_name: str, body: Any, attributes: Mapping[str, Any] | None) -> GenAiRecord:
    """One record as a span event: a mapping body's fields (``content``, ``message``,
    ``tool_calls``...) over the attributes; any other body is the ``content``."""
    merged: dict[str, Any] = dict(attributes or {})
    if isinstance(body, Mapping):
        merged.update(body)
    elif body is not None:
        merged["content"] = body
    return GenAiRecord(event_name, merged)


class ContentStore:
    """Bounded, thread-safe: ``(trace_id, span_id)`` -> the GenAI records sent for that span."""

    def __init__(
        self,
        max_spans: int = MAX_SPANS,
        max_records: int = MAX_RECORDS,
        max_age: float = MAX_AGE_SECONDS,
    ) -> None:
        self._spans: OrderedDict[tuple[int, int], tuple[float, list[GenAiRecord]]] = OrderedDict()
        self._lock = threading.Lock()
        self._max_spans = max_spans
        self._max_records = max_records
        self._max_age = max_age
        self.dropped = 0  # records not kept: over a bound

    def __len__(self) -> int:
        return len(self._spans)

    def add(self, trace_id: int, span_id: int, record: GenAiRecord) -> bool:
        """Keep ``record`` for its span; False when it has no span or is over a bound."""
        if not trace_id or not span_id:
            return False
        now = time.monotonic()
        key = (trace_id, span_id)
        with self._lock:
            held = self._spans.get(key)
            if held is None:
                held = self._spans[key] = (now, [])
                self._expire(now)
            records = held[1]
            if len(records) >= self._max_records:
                self.dropped += 1
                return False
            records.append(record)
            return True

    def _expire(self, now: float) -> None:
        spans = self._spans
        while spans:
            key, (since, records) = next(iter(spans.items()))
            if len(spans) <= self._max_spans and now - since <= self._max_age:
                break
            del spans[key]
            self.dropped += len(records)

    def claim(self, trace_id: int, span_id: int) -> list[GenAiRecord]:
        """The records kept for this span, removed from the store (none: ``[]``)."""
        if not self._spans:  # most spans, and every span when no records are sent
            return []
        with self._lock:
            held = self._spans.pop((trace_id, span_id), None)
        if held is None or time.monotonic() - held[0] > self._max_age:
            return []
        return held[1]


CONTENT = ContentStore()
"""The process's store: filled by :class:`PosthogGenAiLogProcessor` and the bridge's
``/v1/logs``, read by the span mapping."""


def claim(trace_id: int, span_id: int) -> list[GenAiRecord]:
    """The GenAI records sent for this span (see :data:`CONTENT`)."""
    return CONTENT.claim(trace_id, span_id)


class PosthogGenAiLogProcessor:
    """A log record processor (add it to an OpenTelemetry SDK ``LoggerProvider``) that keeps
    GenAI content records for their span's AI event. Other records are left alone. ``client``
    (default: the process's default client) says whether LLM analytics is on and private."""

    def __init__(self, client: Client | None = None, store: ContentStore | None = None) -> None:
        self._client = client
        self._store = store if store is not None else CONTENT

    def on_emit(self, log_record: Any) -> None:
        try:
            record = getattr(log_record, "log_record", log_record)  # SDK 1.3x: LogData
            name = getattr(record, "event_name", None) or (record.attributes or {}).get(
                "event.name"
            )
            if not is_genai_record(name):
                return
            client = self._client if self._client is not None else global_client.get_client()
            settings = client.settings
            if not settings.capture_ai_spans or settings.ai_privacy:
                return  # content that will not be sent is not kept
            self._store.add(
                record.trace_id or 0,
                record.span_id or 0,
                record_event(str(name), record.body, record.attributes),
            )
        except Exception:  # never break the app's logging
            return

    # the rest of the LogRecordProcessor interface
    def emit(self, log_record: Any) -> None:  # SDK 1.3x's name
        self.on_emit(log_record)

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
