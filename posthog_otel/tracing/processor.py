"""PosthogTracesProcessor: every sampled span of the provider, batched to ``/i/v1/traces``.

A ``SpanProcessor`` like OpenTelemetry's ``BatchSpanProcessor``, on the package's OTLP export
(:class:`~posthog_otel.delivery.otlp_export.OtlpExport`, the same queue and sender as the logs
export: Bearer auth, gzip, retries honouring ``Retry-After``, 413 splitting, drops counted):
at most ``max_queue_size`` spans and ``max_queue_bytes`` of estimated encoded size, batches of
``max_export_batch_size`` every ``flush_interval`` seconds, written by :mod:`.otlp_writer`
under the client's privacy rules (:mod:`.privacy`). ``on_end`` never blocks: a full queue
drops the span and counts it (``queue_full``). An unsampled span (a
sampler's ``RECORD_ONLY``) is not exported; a dropped span (``DROP``) never reaches a processor.

``on_start`` stamps PostHog's ingestion names ``posthogDistinctId`` and ``sessionId`` from
the span's PostHog context when the span does not have them yet (not those
``exclude_properties`` names), so spans link to the person and session in PostHog also without
:class:`~posthog_otel.spans.processor.PosthogSpanProcessor`.
Identity is written on the span itself: every other exporter of the same provider sees it too
(the README's "Traces export" section says how to keep it off another backend).

``shutdown`` (and the provider's exit hook) drains within ``shutdown_timeout`` seconds, the
budget events get, and counts what is left as dropped (``shutdown``).

Usage::

    processor = PosthogTracesProcessor(client.settings, resolve_traces(True))
    provider.add_span_processor(processor)
    processor.stats()   # {"spans": 3, "exported": 3, "queued": 0, "dropped": {}, ...}
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .. import _identity
from ..config import ClientSettings
from ..context import current_scope
from ..delivery.otlp_export import OtlpExport
from .options import TracesOptions
from .otlp_writer import encode_spans
from .privacy import ExportRule

__all__ = ["TRACES_PATH", "PosthogTracesProcessor", "estimate_span_bytes"]

TRACES_PATH = "/i/v1/traces"

_logger = logging.getLogger("posthog.otel")
_NATIVE = tuple((f.name, f.native) for f in _identity.FIELDS if f.native)
_CACHE_KEY = "traces_native_attributes"


def _value_bytes(value: Any) -> int:
    if value.__class__ is str:
        return len(value)
    if isinstance(value, tuple | list):
        return sum(_value_bytes(item) + 2 for item in value)
    return 9


def estimate_span_bytes(span: ReadableSpan) -> int:
    """Roughly the span's OTLP protobuf size: ids, times, name, attributes, events.

    Keys are counted at 24 bytes each (they are short names); string values by their length.
    """
    attributes = span.attributes
    size = 96 + len(span.name)
    if attributes:
        size += 24 * len(attributes) + sum(map(_value_bytes, attributes.values()))
    events = span.events
    if events:
        for event in events:
            size += 32 + len(event.name)
            if event.attributes:
                size += 24 * len(event.attributes)
                size += sum(map(_value_bytes, event.attributes.values()))
    return size


class PosthogTracesProcessor(SpanProcessor):
    """See the module docstring."""

    def __init__(
        self,
        settings: ClientSettings,
        options: TracesOptions,
        *,
        stamp_identity: bool = True,
        rule: ExportRule | None = None,
    ) -> None:
        self._stamp = stamp_identity
        self._rule = rule
        self._unsampled = 0
        self.enabled = True
        self._export: OtlpExport[ReadableSpan] = OtlpExport(
            settings,
            TRACES_PATH,
            "traces",
            encode=lambda spans: encode_spans(spans, rule),
            size_of=estimate_span_bytes,
            batch_size=options.max_export_batch_size,
            max_queue_size=options.max_queue_size,
            max_queue_bytes=options.max_queue_bytes,
            flush_interval=options.flush_interval,
        )

    @property
    def url(self) -> str:
        return self._export.url

    @property
    def export(self) -> OtlpExport[ReadableSpan]:
        return self._export

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        if not (self._stamp and self.enabled):
            return
        try:
            scope = current_scope(parent_context)
            if scope is None:
                return
            state = scope.resolve()
            native: dict[str, Any] | None = state.extra.get(_CACHE_KEY)
            if native is None:
                rule = self._rule
                native = {
                    attr: state.ids[name]
                    for name, attr in _NATIVE
                    if name in state.ids and (rule is None or rule.allows(attr))
                }
                state.extra[_CACHE_KEY] = native
            if not native:
                return
            existing = span.attributes or {}
            missing = {key: value for key, value in native.items() if key not in existing}
            if missing:
                span.set_attributes(missing)
        except Exception:
            _logger.debug("posthog-otel traces on_start failed", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        if not self.enabled:
            return
        try:
            context = span.context
            if context is None or not context.trace_flags.sampled:
                self._unsampled += 1
                return
            self._export.put(span)
        except Exception:
            _logger.debug("posthog-otel traces on_end failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._export.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        """The provider's shutdown (and its exit hook): :meth:`close` within the budget."""
        self.close()

    def close(self, timeout: float | None = None) -> bool:
        """Drain within ``timeout`` (default ``shutdown_timeout``); stop; abort retry waits."""
        if self._export.closed:
            return True
        delivered = self._export.shutdown(timeout)
        self.enabled = False
        return delivered

    def stats(self) -> dict[str, Any]:
        """Counters: spans offered, exported, queued, requests, dropped by reason."""
        stats = self._export.stats()
        return {
            "spans": stats["captured"],
            "exported": stats["sent"],
            "batches": stats["batches"],
            "requests": stats["requests"],
            "retries": stats["retries"],
            "queued": stats["queued"],
            "queued_bytes": stats["queued_bytes"],
            "unsampled": self._unsampled,
            "dropped": stats["dropped"],
            "dropped_total": stats["dropped_total"],
            "last_error": stats["last_error"],
        }
