"""PosthogSpanExporter: spans to PostHog events under any span processor.

Identity, session and tags are read from span attributes (``posthog.*``, stamped by
:class:`~posthog_otel.spans.processor.PosthogSpanProcessor` or copied from baggage by any baggage
span processor; also ``posthogDistinctId``/``sessionId``, ``user.id``, ``session.id``); a span
lacking them inherits them from its ancestors exported in the same batch.

Usage::

    provider.add_span_processor(BatchSpanProcessor(PosthogSpanExporter()))

or, with zero code, ``OTEL_TRACES_EXPORTER=otlp,posthog`` (entry point
``opentelemetry_traces_exporter`` = ``posthog``; built with no arguments from the
environment: ``POSTHOG_API_KEY``, ``POSTHOG_HOST``, ``POSTHOG_OTEL_CAPTURE_SPANS``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import global_client
from .genai import AiOptions
from .mapping import ExportFamily, Identity, MappingOptions, SpanMapper

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["PosthogSpanExporter"]

_logger = logging.getLogger("posthog.otel")


class PosthogSpanExporter(SpanExporter):
    """Maps finished spans to events (see :mod:`posthog_otel.spans.mapping`) and captures them.

    ``client`` defaults to the process's default client. ``capture_spans``: ``"roots"``
    (default, or ``POSTHOG_OTEL_CAPTURE_SPANS``), ``"all"`` or ``"none"``.
    ``capture_exceptions`` defaults to the client's ``enable_exception_autocapture``.
    ``export`` returns once the batch's events are delivered (within the client's
    ``timeout``); ``force_flush`` and ``shutdown`` flush the client within their time budget.
    The client is flushed, never closed, so other users of it keep working.
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        capture_spans: str | None = None,
        capture_exceptions: bool | None = None,
    ) -> None:
        self._client = client
        mode = capture_spans or os.environ.get("POSTHOG_OTEL_CAPTURE_SPANS", "").strip() or "roots"
        self._capture_spans = mode
        self._capture_exceptions = capture_exceptions
        MappingOptions(capture_spans=mode)  # validate now, not on the export thread
        self._mapper: SpanMapper | None = None
        self._mapper_client: Client | None = None  # the client the mapper's options came from
        self._shut_down = False

    @property
    def capture_spans(self) -> str:
        """Which spans become events: ``"roots"``, ``"all"`` or ``"none"``."""
        return self._capture_spans

    @property
    def client(self) -> Client:
        return self._client if self._client is not None else global_client.get_client()

    @property
    def mapper(self) -> SpanMapper:
        mapper = self._mapper
        client = self.client
        if mapper is None or client is not self._mapper_client:  # setup() replaced the default
            self._mapper_client = client
            capture = self._capture_exceptions
            options = MappingOptions(
                capture_spans=self._capture_spans,
                capture_exceptions=client.enable_exception_autocapture
                if capture is None
                else capture,
                frame_options=client.frame_options,
                ai=ai_options(client),
            )
            mapper = self._mapper = SpanMapper(options)
        return mapper

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shut_down:
            return SpanExportResult.FAILURE
        family = ExportFamily(spans)
        for span in spans:
            self.export_span(span, family=family)
        # Like other exporters, return once the batch is delivered (or the budget is spent),
        # so a TracerProvider's force_flush means "sent".
        delivered = self.client.flush(self.client.settings.timeout)
        return SpanExportResult.SUCCESS if delivered else SpanExportResult.FAILURE

    def export_span(
        self,
        span: ReadableSpan,
        identity: Identity | None = None,
        family: ExportFamily | None = None,
    ) -> int:
        """Capture the events of one span; returns how many. Never raises. ``family``: the
        spans exported with it, to inherit identity from."""
        try:
            client = self.client
            events = self.mapper.events_for(span, identity, family)
            for event in events:
                client.capture_raw(
                    event.name,
                    distinct_id=event.distinct_id,
                    properties=event.properties,
                    timestamp=event.timestamp,
                )
            return len(events)
        except Exception:
            _logger.warning(
                "posthog-otel could not map span %r to events",
                getattr(span, "name", "?"),
                exc_info=True,
            )
            return 0

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.client.flush(timeout_millis / 1000)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        client = self.client
        budget = (
            client.settings.shutdown_timeout if timeout_millis is None else timeout_millis / 1000
        )
        client.flush(budget)
        self._shut_down = True


def ai_options(client: Client) -> AiOptions:
    """The client's LLM analytics settings (``capture_ai_spans``, ``ai_privacy_mode``...)."""
    settings = client.settings
    return AiOptions(
        enabled=settings.capture_ai_spans,
        privacy_mode=settings.ai_privacy,
        max_content_bytes=settings.ai_max_content_bytes,
    )
