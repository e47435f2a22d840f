"""One client's traces export: the SDK provider, the export processor, and their lifecycle.

:class:`TracesPipeline` finds the SDK ``TracerProvider`` (the one given, else the global one;
when only OpenTelemetry's no-op provider exists it creates one from the ``traces`` options'
resource and span limits and installs it) and adds a
:class:`~.processor.PosthogTracesProcessor` exporting to ``{host}/i/v1/traces``. Processors
already on the provider (an app's own ``BatchSpanProcessor`` to another backend) keep
receiving every span.

Usage (the :class:`~posthog_otel.Client` does this for ``traces=...``)::

    pipeline = TracesPipeline(client.settings, resolve_traces(True), rule=ExportRule())
    tracer = pipeline.tracer
    pipeline.flush(5); pipeline.shutdown(5); pipeline.stats()
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace

from ..config import ClientSettings
from ..version import __version__
from .options import TracesOptions
from .privacy import ExportRule
from .processor import PosthogTracesProcessor

__all__ = ["TracesPipeline", "sdk_provider"]

_logger = logging.getLogger("posthog.otel")


def sdk_provider(given: Any, options: TracesOptions | None = None) -> Any:
    """The SDK provider to add processors to (created and installed if needed), or None."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanLimits, TracerProvider

    provider = given if given is not None else trace.get_tracer_provider()
    if hasattr(provider, "add_span_processor"):
        return provider
    if given is not None:
        return None
    kwargs: dict[str, Any] = {}
    if options is not None:
        kwargs["resource"] = Resource.create(options.resource())
        kwargs["span_limits"] = SpanLimits(
            max_span_attributes=options.max_attributes_per_span,
            max_events=options.max_events_per_span,
            max_attribute_length=options.max_attribute_value_length,
        )
    created = TracerProvider(**kwargs)
    trace.set_tracer_provider(created)
    if trace.get_tracer_provider() is not created:
        return None
    return created


class TracesPipeline:
    """See the module docstring. Raises ``ValueError`` when no SDK provider can take it."""

    def __init__(
        self,
        settings: ClientSettings,
        options: TracesOptions,
        *,
        tracer_provider: Any = None,
        rule: ExportRule | None = None,
    ) -> None:
        provider = sdk_provider(tracer_provider, options)
        if provider is None:
            raise ValueError(
                "traces need the OpenTelemetry SDK's TracerProvider; another provider is installed"
            )
        self.options = options
        self.provider = provider
        self.processor = PosthogTracesProcessor(settings, options, rule=rule)
        provider.add_span_processor(self.processor)
        self.tracer: trace.Tracer = provider.get_tracer("posthog_otel", __version__)
        _logger.debug("posthog-otel exports spans to %s", self.processor.url)

    def flush(self, timeout: float | None = None) -> bool:
        return self.processor.force_flush(int((30.0 if timeout is None else timeout) * 1000))

    def shutdown(self, timeout: float | None = None) -> bool:
        """Export what is queued within ``timeout``; new spans are no longer exported (the SDK
        cannot remove a processor, so this one stays on the provider, switched off)."""
        return self.processor.close(timeout)

    def stats(self) -> dict[str, Any]:
        return self.processor.stats()
