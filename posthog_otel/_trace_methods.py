"""The :class:`~posthog_otel.Client`'s tracing: ``traces=...``, ``start_span``, ``get_active_span``.

posthog-python 7.9x's client takes ``traces={...}`` (None = off) and offers ``start_span`` /
``get_active_span``. Here the same option exports every span of the OpenTelemetry SDK's
``TracerProvider`` to ``{host}/i/v1/traces`` (:mod:`posthog_otel.tracing`), and the two
methods return real OpenTelemetry spans. Tracing is off without the option, without an API key,
or on a disabled client: ``start_span`` then returns an inert handle (it still forwards an
inbound ``traceparent``). Stats, flush and shutdown include the spans.

Usage::

    client = Client("phc_...", traces={"service_name": "checkout"})
    with client.start_span("charge", kind="client") as span:
        span.set_attribute("amount", 42)
    client.stats()["traces"]      # {"spans": 1, "exported": 1, "dropped": {}, ...}
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from ._client_core import ClientCore
from .config import name_matcher
from .tracing.options import resolve_traces
from .tracing.pipeline import TracesPipeline
from .tracing.privacy import ExportRule
from .tracing.span import TracingSpan
from .tracing.span import get_active_span as _active_span
from .tracing.span import start_span as _start_span

__all__ = ["TraceMethods"]

_logger = logging.getLogger("posthog.otel")


class TraceMethods(ClientCore):
    """Tracing methods of :class:`~posthog_otel.Client`. See the module docstring."""

    _traces: TracesPipeline | None = None

    def _start_traces_from_settings(self) -> None:
        if self._settings.traces is not None:
            self.enable_traces(self._settings.traces)

    def enable_traces(self, traces: Any = True, *, tracer_provider: Any = None) -> bool:
        """Export spans to PostHog (``traces``: True or posthog-python's dict); True when on.

        Never raises: a problem is logged and tracing stays off.
        """
        if self._traces is not None:
            return True
        settings = self._settings
        try:
            options = resolve_traces(traces)
            if options is None:
                return False
            if settings.disabled or not settings.api_key or not settings.send:
                _logger.info("posthog-otel: traces are not exported (no API key or disabled)")
                return False
            self._traces = TracesPipeline(
                settings,
                options,
                tracer_provider=tracer_provider,
                rule=ExportRule(
                    privacy=settings.ai_privacy,
                    excluded=name_matcher(settings.exclude_properties),
                ),
            )
            return True
        except ValueError as exc:
            _logger.error("posthog-otel: traces are off: %s", exc)
        except Exception:
            _logger.exception("posthog-otel could not start traces export; tracing is off")
        return False

    def disable_traces(self, timeout: float | None = None) -> bool:
        """Export what is queued (within ``timeout``) and stop exporting spans."""
        pipeline, self._traces = self._traces, None
        return pipeline.shutdown(timeout) if pipeline is not None else True

    @property
    def traces_enabled(self) -> bool:
        return self._traces is not None

    def start_span(
        self,
        name: str,
        *,
        kind: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        parent: Any = None,
        tracestate: str | None = None,
        start_time: Any = None,
    ) -> TracingSpan:
        """Start a span (posthog-python's signature); a real OpenTelemetry span when tracing is
        on, an inert handle otherwise. Use it as a context manager; it never raises."""
        pipeline = self._traces
        on = pipeline is not None and pipeline.processor.enabled and not self._disabled
        tracer = pipeline.tracer if on and pipeline is not None else None
        return _start_span(
            tracer,
            name,
            kind=kind,
            attributes=attributes,
            parent=parent,
            tracestate=tracestate,
            start_time=start_time,
        )

    def get_active_span(self) -> TracingSpan | None:
        """The current OpenTelemetry span as a handle, or None."""
        return _active_span()

    # -- joined to the client's flush, shutdown and stats ---------------------------------

    def _traces_stats(self, stats: dict[str, Any]) -> dict[str, Any]:
        if self._traces is not None:
            stats["traces"] = self._traces.stats()
        return stats

    def _with_traces(self, method: str, budget: float | None, events: Any) -> bool:
        """Run ``events(budget)`` and the pipeline's ``method`` side by side, one budget."""
        pipeline = self._traces
        if pipeline is None:
            return bool(events(budget))
        outcome: list[bool] = []
        run = getattr(pipeline, method)
        thread = threading.Thread(
            target=lambda: outcome.append(run(budget)),
            name="posthog-otel-traces-" + method,
            daemon=True,
        )
        start = time.monotonic()
        worker: threading.Thread | None = thread
        try:
            thread.start()
        except RuntimeError:  # no new threads at interpreter exit: one after the other
            worker = None
        delivered = bool(events(budget))
        remaining = None if budget is None else max(0.0, budget - (time.monotonic() - start))
        if worker is None:
            outcome.append(run(remaining))
        else:
            worker.join(remaining)
        return delivered and bool(outcome and outcome[0])
