"""PosthogTracesProcessor: every sampled span of the provider, batched to ``/i/v1/traces``.

A ``SpanProcessor`` like OpenTelemetry's ``BatchSpanProcessor``, on the package's own
bounded queue (:class:`~posthog_otel.delivery.queue.WorkQueue`): at most ``max_queue_size``
spans and ``max_queue_bytes`` of estimated encoded size, batches of ``max_export_batch_size``
every ``flush_interval`` seconds, sent by :class:`~.sender.TraceSender`. ``on_end`` never
blocks: a full queue drops the span and counts it (``queue_full``). An unsampled span (a
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

    processor = PosthogTracesProcessor(TraceSender(host, key), resolve_traces(True))
    provider.add_span_processor(processor)
    processor.stats()   # {"spans": 3, "exported": 3, "queued": 0, "dropped": {}, ...}
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .. import _identity
from ..context import current_scope, runtime
from ..delivery.queue import WorkQueue
from .options import TracesOptions
from .privacy import ExportRule
from .sender import TraceSender

__all__ = ["PosthogTracesProcessor", "estimate_span_bytes"]

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
        sender: TraceSender,
        options: TracesOptions,
        *,
        shutdown_timeout: float = 5.0,
        stamp_identity: bool = True,
        rule: ExportRule | None = None,
    ) -> None:
        self._sender = sender
        self._rule = rule
        self._shutdown_timeout = shutdown_timeout
        self._stamp = stamp_identity
        self._unsampled = 0
        self.enabled = True
        self._queue: WorkQueue[ReadableSpan] = WorkQueue(
            "posthog-otel-traces",
            self._export,
            max_size=options.max_queue_size,
            max_bytes=options.max_queue_bytes,
            size_of=estimate_span_bytes,
            batch_size=options.max_export_batch_size,
            interval=options.flush_interval,
            shutdown_timeout=shutdown_timeout,
            full_warning=(
                f"PostHog trace export queue is full (max_queue_size={options.max_queue_size}, "
                f"max_queue_bytes={options.max_queue_bytes}); dropping spans until it drains"
            ),
            drained_warning="PostHog trace export queue drained; %d spans were dropped while full",
            on_thread_start=_suppress_instrumentation,
            after_fork=sender.after_fork,
        )

    def _export(self, batch: list[ReadableSpan]) -> None:
        self._sender.send(batch, self._queue.deadline)

    @property
    def url(self) -> str:
        return self._sender.url

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
            self._queue.put(span)
        except Exception:
            _logger.debug("posthog-otel traces on_end failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._queue.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        """The provider's shutdown (and its exit hook): :meth:`close` within the budget."""
        self.close()

    def close(self, timeout: float | None = None) -> bool:
        """Drain within ``timeout`` (default ``shutdown_timeout``); stop; abort retry waits."""
        if self._queue.closed:
            return True
        budget = self._shutdown_timeout if timeout is None else timeout
        delivered = self._queue.shutdown(budget)
        self._sender.shutdown()
        self.enabled = False
        return delivered

    def stats(self) -> dict[str, Any]:
        """Counters: spans offered, exported, queued, requests, dropped by reason."""
        queue = self._queue.counts()
        sent = self._sender.counts()
        dropped: dict[str, int] = sent["dropped"]
        for reason, count in (
            ("queue_full", queue.dropped),
            ("shutdown", queue.refused + queue.discarded),
        ):
            if count:
                dropped[reason] = dropped.get(reason, 0) + count
        return {
            "spans": queue.offered,
            "exported": sent["exported"],
            "batches": sent["batches"],
            "requests": sent["requests"],
            "queued": queue.pending,
            "queued_bytes": queue.pending_bytes,
            "unsampled": self._unsampled,
            "dropped": dropped,
            "dropped_total": sum(dropped.values()),
            "last_error": self._sender.last_error,
        }


def _suppress_instrumentation() -> None:
    """The export thread's context: uploads create no spans and carry no baggage."""
    otel_context.attach(runtime.suppressed_context())
