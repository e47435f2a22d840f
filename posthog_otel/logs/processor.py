"""PosthogLogProcessor: Python log records to PostHog's OTLP logs endpoint, with identity.

An OpenTelemetry ``LogRecordProcessor``. On the logging thread, ``on_emit`` keeps a record
only when it is at or above the level threshold and not from one of our own loggers
(``posthog``, ``posthog_otel``, ``opentelemetry`` and their children) nor logged by the export
thread itself (no feedback loop); it then picks the PostHog attributes of the record's context
— ``posthogDistinctId`` and ``sessionId`` (what PostHog links persons and sessions by), our
``posthog.distinct_id``/``posthog.session_id``/``posthog.window_id``/``posthog.device_id`` and
``posthog.tag.<key>`` — from a dict cached per context state, and queues the record with them.
Nothing is encoded, sent or waited for on that thread; a full queue drops the record and counts
it. The trace and span ids are the record's own (the SDK takes them from the active span).

Privacy follows the client's rules for events, failing closed: with ``exclude_properties``
set, a tag, an identity value (``distinct_id``, ``$session_id``, ``$window_id``,
``$device_id`` or the attribute name) or any other record attribute whose name matches is left
out; if the rule cannot be applied to a record, the record goes without PostHog attributes.
In privacy mode (``ai_privacy_mode``/``privacy_mode``) a record that is GenAI content — a
``gen_ai.*`` event record (``gen_ai.user.message``, ``gen_ai.choice``...) or one with a GenAI
content attribute (:func:`~posthog_otel.genai_rules.is_genai_content`) — is not exported; it
is counted in ``stats()["dropped"]["privacy"]``. A disabled client sends no logs.

Usage::

    processor = PosthogLogProcessor(client.settings, level=logging.INFO)
    logger_provider.add_log_record_processor(processor)
    processor.stats()    # {"captured": ..., "sent": ..., "dropped": {...}, ...}
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

from .. import _identity
from ..config import ClientSettings, name_matcher
from ..context import current_scope, runtime
from ..delivery.otlp_export import OtlpExport
from ..genai_rules import is_genai_content, is_genai_event
from ..spans.mapping import span_attributes_for
from ._sdk import plain_attributes
from .encode import LogEncoder, Queued, Stamp, approx_size, stamp

__all__ = ["LOGS_PATH", "OWN_LOGGERS", "PosthogLogProcessor", "severity_floor"]

_logger = logging.getLogger("posthog.otel")

LOGS_PATH = "/i/v1/logs"
#: Loggers whose records are never exported (and their children): ours, posthog-python's,
#: OpenTelemetry's (its exporters log their failures).
OWN_LOGGERS = ("posthog", "posthog_otel", "opentelemetry")

# OpenTelemetry's severity numbers for Python's levels (the logs data model's mapping)
_SEVERITY = ((50, 21), (40, 17), (30, 13), (20, 9), (10, 5))


def severity_floor(level: int) -> int:
    """The lowest OpenTelemetry severity number of records at Python level ``level`` or above."""
    if level >= 54:
        return 24  # FATAL4
    for python_level, severity in _SEVERITY:
        if level >= python_level:
            return severity + min(3, level - python_level)
    return 0


def _genai_content(record: Any) -> bool:
    """Is this log record GenAI content (privacy mode keeps it out of the export)?"""
    attributes = plain_attributes(record.attributes)
    if is_genai_event(getattr(record, "event_name", None) or attributes.get("event.name")):
        return True
    return any(is_genai_content(key) for key in attributes)


def _own(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in OWN_LOGGERS)


class PosthogLogProcessor(LogRecordProcessor):
    """See the module docstring. ``is_disabled``: whether the client is disabled right now."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        level: int = logging.INFO,
        is_disabled: Callable[[], bool] | None = None,
    ) -> None:
        self.level = level
        self._floor = severity_floor(level)
        self._is_disabled = is_disabled
        self._excluded = name_matcher(settings.exclude_properties)
        self._privacy = settings.ai_privacy
        self._export: OtlpExport[Queued] = OtlpExport(
            settings,
            LOGS_PATH,
            "logs",
            encode=LogEncoder(self._excluded).encode,
            size_of=approx_size,
        )
        self._cache_key = f"log_attributes:{id(self)}"
        self._names: dict[str, bool] = {}  # logger name -> one of ours
        self.active = True

    @property
    def export(self) -> OtlpExport[Queued]:
        return self._export

    def stats(self) -> dict[str, Any]:
        return self._export.stats()

    # -- the logging thread ---------------------------------------------------------------

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        if not self.active:
            return
        try:
            record = log_record.log_record
            severity = record.severity_number
            if severity is None or severity.value < self._floor:
                return
            scope_info = log_record.instrumentation_scope
            name = scope_info.name if scope_info is not None else ""
            own = self._names.get(name)
            if own is None:
                own = _own(name)
                if len(self._names) < 4096:
                    self._names[name] = own
            if own or OtlpExport.on_export_thread():
                return
            if self._is_disabled is not None and self._is_disabled():
                return
            if self._privacy and _genai_content(record):
                self._export.count_dropped("privacy")
                return
            self._export.put((log_record, self._identity(record.context)))
        except Exception:
            _logger.debug("posthog-otel could not queue a log record", exc_info=True)

    def _identity(self, context: Any) -> Stamp | None:
        try:
            scope = current_scope(context if context is not None else runtime.get_current())
            if scope is None:
                return None
            state = scope.resolve()
            cached: Stamp | None = state.extra.get(self._cache_key)
            if cached is None:
                cached = self._attributes(state.ids, state.tags)
                state.extra[self._cache_key] = cached
            return cached
        except Exception:  # fail closed: no identity rather than identity the rules forbid
            _logger.debug("posthog-otel left identity off a log record", exc_info=True)
            return None

    def _attributes(self, ids: Mapping[str, str], tags: Mapping[str, Any]) -> Stamp:
        excluded = self._excluded
        if excluded is not None:
            ids = {
                name: value
                for name, value in ids.items()
                if not any(excluded(key) for key in _identity.exclusion_names(name))
            }
            tags = {key: value for key, value in tags.items() if not excluded(str(key))}
        return stamp(span_attributes_for(ids, tags))

    # -- LogRecordProcessor ---------------------------------------------------------------

    def shutdown(self) -> None:
        self._export.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._export.flush(timeout_millis / 1000)
