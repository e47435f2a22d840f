"""Spans to PostHog's ``/i/v1/traces`` through OpenTelemetry's own OTLP/HTTP exporter.

OpenTelemetry's ``OTLPSpanExporter`` (``opentelemetry-exporter-otlp-proto-http``) encodes
the spans (OTLP protobuf), gzips them and retries 429/502/503/504 and connection errors with
backoff, waiting what ``Retry-After`` asks for. :class:`TraceSender` adds what PostHog needs
and the stock exporter does not do:

* exactly our headers: ``Authorization: Bearer <project API key>`` plus the exporter's
  content headers. Headers from ``OTEL_EXPORTER_OTLP_HEADERS`` /
  ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` are meant for the app's own backend (often its
  credentials) and never reach PostHog.
* a 413 answer splits the batch in two and sends each half; a single span still refused is
  dropped as ``too_large``.
* every span is counted: ``exported``, or dropped with a reason (``rejected`` for another 4xx,
  ``failed`` when retries or the time budget ran out, ``too_large``).

Usage::

    sender = TraceSender("https://us.i.posthog.com", "phc_...", timeout=15)
    sender.send(spans)          # ReadableSpans, on a background thread
    sender.counts()             # {"exported": 12, "batches": 1, "dropped": {}}
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import requests
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from ..version import __version__

__all__ = ["TRACES_PATH", "TraceSender"]

TRACES_PATH = "/i/v1/traces"
_logger = logging.getLogger("posthog.otel")
_CONTENT_HEADERS = frozenset({"content-type", "content-encoding"})


class _PosthogSession(requests.Session):
    """A session that sends only our headers, and remembers the last answer's status."""

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self._auth = f"Bearer {api_key}"
        self.trust_env = False  # no proxy/netrc credentials from the environment
        self.last_status: int | None = None
        self.attempts = 0
        self.hooks["response"].append(self._remember)

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last_status = response.status_code

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        given = kwargs.get("headers") or {}
        headers = {k: v for k, v in given.items() if str(k).lower() in _CONTENT_HEADERS}
        headers["Authorization"] = self._auth
        headers["User-Agent"] = f"posthog-otel/{__version__}"
        kwargs["headers"] = headers
        self.attempts += 1
        return super().request(method, url, *args, **kwargs)


class TraceSender:
    """See the module docstring. Used from one thread at a time (the export queue's)."""

    def __init__(self, host: str, api_key: str, *, timeout: float = 15.0) -> None:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        self.url = host.rstrip("/") + TRACES_PATH
        self._session = _PosthogSession(api_key)
        self._exporter = OTLPSpanExporter(
            endpoint=self.url,
            headers={},
            timeout=timeout,
            compression=Compression.Gzip,
            session=self._session,
            max_request_size=0,  # a 413 from PostHog splits the batch instead
        )
        self._lock = threading.Lock()
        self._exported = 0
        self._batches = 0
        self._dropped: dict[str, int] = {}
        self.last_error: str | None = None

    def send(self, spans: Sequence[ReadableSpan]) -> None:
        """Export ``spans`` (splitting on 413); never raises."""
        if not spans:
            return
        try:
            self._session.last_status = None
            result = self._exporter.export(spans)
        except Exception as exc:  # the exporter catches its own; this is a last guard
            _logger.debug("posthog-otel trace export failed", exc_info=True)
            self._drop("failed", len(spans), repr(exc))
            return
        if result is SpanExportResult.SUCCESS:
            with self._lock:
                self._exported += len(spans)
                self._batches += 1
            return
        status = self._session.last_status
        if status == 413:
            if len(spans) == 1:
                self._drop("too_large", 1, "a single span was refused as too large (413)")
                return
            half = len(spans) // 2
            self.send(spans[:half])
            self.send(spans[half:])
            return
        if status is not None and 400 <= status < 500 and status not in (408, 429):
            self._drop("rejected", len(spans), f"HTTP {status}")
        else:
            detail = f"HTTP {status}" if status is not None else "no answer"
            self._drop("failed", len(spans), f"{detail} after retries")

    def _drop(self, reason: str, count: int, error: str) -> None:
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + count
            self.last_error = error
        _logger.warning(
            "posthog-otel: %d span(s) not exported to %s (%s: %s)", count, self.url, reason, error
        )

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {
                "exported": self._exported,
                "batches": self._batches,
                "requests": self._session.attempts,
                "dropped": dict(self._dropped),
            }

    def shutdown(self) -> None:
        """Abort retry waits; an in-flight request finishes on its own thread."""
        try:
            self._exporter.shutdown()  # type: ignore[no-untyped-call]
        except Exception:
            _logger.debug("posthog-otel trace exporter shutdown failed", exc_info=True)
