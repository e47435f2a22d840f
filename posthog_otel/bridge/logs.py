"""OTLP log records -> PostHog events, with the span mapping's identity and exception rules.

Rules:

* A record at or above ``min_severity`` (default ERROR, severity number 17) that carries
  exception attributes (``exception.type``, ``exception.message`` or
  ``exception.stacktrace``, as OTel logging handlers write them) becomes a ``$exception``
  event with ``$exception_list`` (frames parsed from Python text; Java, Node and Go stacks
  best-effort), ``$exception_level`` from the severity; handled unless ``exception.escaped``
  says otherwise or the severity is FATAL (:mod:`posthog_otel.errors.handled`). It is de-duplicated per trace with the
  exceptions recorded on spans (an exception both logged and recorded on a span in the same
  trace is sent once), and skipped when marked ``posthog.exception_captured``.
* A record with a ``posthog.event`` attribute becomes an event of that name, whatever its
  severity, with the record's attributes as properties plus ``message`` (the body),
  ``severity_text``, ``severity_number`` and ``log_event_name`` (the record's event name).
  GenAI content never becomes a property of these events: attributes for which
  :func:`posthog_otel.spans.genai.is_genai_content` is true are dropped, and so is the body of
  a GenAI event record (event name ``gen_ai.*``).
* A GenAI content record (event name ``gen_ai.*``: ``gen_ai.user.message``, ``gen_ai.choice``,
  ``gen_ai.client.inference.operation.details``...) is kept for its span's AI event
  (:mod:`posthog_otel.spans.genai_logs`) when LLM analytics is on and not private: a span
  that reaches the bridge after its records carries their content, and a generation that
  reached it before them and is held for them (:mod:`posthog_otel.bridge.genai_wait`) is told
  through ``on_genai_record(trace_id, span_id)``.
* Nothing else becomes an event.
* Person, session, window and tags come from the record's attributes by the same names as for
  spans (``posthog.distinct_id``, ``posthogDistinctId``, ``user.id``, ``enduser.id``;
  ``posthog.session_id``, ``sessionId``, ``session.id``; ``posthog.tag.*``); every event carries
  ``$trace_id``/``$span_id`` when the record has them, and ``service.name``.

Usage::

    logs = LogMapper(span_mapper, min_severity=17, on_genai_record=wait.content_arrived)
    if logs.may_yield(record.severity_number, maybe_marked):
        for event in logs.events_for(record):
            client.capture_raw(event.name, distinct_id=event.distinct_id, ...)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .._identity import PREFIX
from ..errors import log_exception_handled
from ..spans import genai_logs
from ..spans.genai import GENAI_PREFIXES, is_genai_content
from ..spans.genai_logs import is_genai_record
from ..spans.mapping import (
    EVENT_ATTRIBUTE,
    HIDDEN_ATTRIBUTES,
    SpanEvent,
    SpanMapper,
    context_properties,
    identity_from_attributes,
    property_value,
)

__all__ = ["LogMapper"]

_EXCEPTION_KEYS = ("exception.type", "exception.message", "exception.stacktrace")


def _plain(key: str) -> bool:
    """An attribute a log record's event carries: not ours, not GenAI content."""
    return not (key.startswith(PREFIX) or key in HIDDEN_ATTRIBUTES or is_genai_content(key))


def _genai_event(record: Any) -> bool:
    """A GenAI event record (``gen_ai.user.message``, ``gen_ai.choice``...): its body is
    prompt or completion content, never an event's ``message``."""
    name = record.event_name or record.attributes.get("event.name") or ""
    return str(name).startswith(GENAI_PREFIXES)


def _level(severity: int) -> str:
    if severity >= 21:
        return "fatal"
    if severity >= 17:
        return "error"
    if severity >= 13:
        return "warning"
    if severity >= 9:
        return "info"
    return "debug"


class LogMapper:
    """Turns decoded log records into :class:`~posthog_otel.spans.mapping.SpanEvent` s."""

    def __init__(
        self,
        spans: SpanMapper,
        min_severity: int = 17,
        on_genai_record: Callable[[int, int], None] | None = None,
    ) -> None:
        self._spans = spans
        self.min_severity = min_severity
        self._on_genai_record = on_genai_record

    def keeps_genai(self, body: bytes | bytearray) -> bool:
        """Might this request hold GenAI content records to keep (then decode every record)?"""
        ai = self._spans.options.ai
        return ai.enabled and not ai.privacy_mode and b"gen_ai." in body

    def may_yield(self, severity: int, maybe_marked: bool) -> bool:
        """Could :meth:`events_for` return events? False only when it surely returns none."""
        return maybe_marked or (
            severity >= self.min_severity and self._spans.options.capture_exceptions
        )

    def events_for(self, record: Any) -> list[SpanEvent]:
        """Events for one decoded log record (see the module docstring)."""
        attributes = record.attributes
        identity = identity_from_attributes(attributes)
        seconds = record.timestamp / 1e9 if record.timestamp else time.time()
        events: list[SpanEvent] = []
        event_name = record.event_name or attributes.get("event.name")
        if is_genai_record(event_name):  # content for its span's AI event (genai_logs)
            ai = self._spans.options.ai
            if (
                ai.enabled
                and not ai.privacy_mode
                and genai_logs.CONTENT.add(
                    record.trace_id,
                    record.span_id,
                    genai_logs.record_event(str(event_name), record.body, attributes),
                )
                and self._on_genai_record is not None
            ):
                self._on_genai_record(record.trace_id, record.span_id)
        marked = attributes.get(EVENT_ATTRIBUTE)
        if marked:
            props = self._base(record, identity)
            for key, value in attributes.items():
                if _plain(key) and key not in props:
                    props[key] = property_value(value)
            self._describe(record, props)
            events.append(SpanEvent(str(marked), identity.distinct_id, props, seconds))
        if (
            record.severity_number >= self.min_severity
            and self._spans.options.capture_exceptions
            and any(key in attributes for key in _EXCEPTION_KEYS)
        ):
            handled = log_exception_handled(
                attributes.get("exception.escaped"), severity_number=record.severity_number
            )
            entries = self._spans.exception_list_once(record.trace_id, attributes, handled=handled)
            if entries:
                props = self._base(record, identity)
                for key, value in attributes.items():
                    if _plain(key) and not key.startswith("exception."):
                        props.setdefault(key, property_value(value))
                self._describe(record, props)
                props["$exception_list"] = entries
                props["$exception_level"] = _level(record.severity_number)
                events.append(SpanEvent("$exception", identity.distinct_id, props, seconds))
        return events

    @staticmethod
    def _base(record: Any, identity: Any) -> dict[str, Any]:
        return context_properties(
            identity,
            record.trace_id,
            record.span_id,
            record.resource.attributes.get("service.name"),
        )

    @staticmethod
    def _describe(record: Any, props: dict[str, Any]) -> None:
        if record.body is not None and not _genai_event(record):
            props["message"] = record.body
        if record.severity_text:
            props["severity_text"] = record.severity_text
        if record.severity_number:
            props["severity_number"] = record.severity_number
        if record.event_name:
            props["log_event_name"] = record.event_name
