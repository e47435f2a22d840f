"""Span batches to PostHog's ``/i/v1/traces``: OTLP protobuf, gzip, retries, 413 splitting.

Each batch is written by :mod:`.otlp_writer` (the same bytes as OpenTelemetry's encoder, in
less than half its CPU), gzipped at level 1 (a fifth of level 9's CPU for a body ~3% larger)
and posted with exactly these headers: ``Authorization: Bearer <project API key>``,
``Content-Type: application/x-protobuf``, ``Content-Encoding: gzip``, ``User-Agent``. Nothing
from ``OTEL_EXPORTER_OTLP_*HEADERS`` (meant for the app's own backend, often its credentials)
and no proxy or netrc credentials from the environment reach PostHog.

Answers, as OTLP/HTTP and PostHog's capture API define them:

* 2xx: exported.
* 408, 429, 5xx, or no answer (connection refused, reset, timeout): retried with exponential
  backoff and jitter (about 1, 2, 4 ... s, capped at 30 s), waiting at least what
  ``Retry-After`` asks (seconds or an HTTP date, capped at 30 s), up to ``max_attempts``
  attempts and never past the export's time budget (``timeout`` seconds) or shutdown's
  deadline; then dropped as ``failed``.
* 413: the batch is split in halves, each sent on its own; a single span still refused is
  dropped as ``too_large``.
* any other 4xx: dropped as ``rejected``.

Every span is counted: ``exported``, or dropped with its reason.

Usage::

    sender = TraceSender("https://us.i.posthog.com", "phc_...", timeout=15)
    sender.send(spans)          # ReadableSpans, on the export queue's thread
    sender.counts()             # {"exported": 12, "batches": 1, "requests": 1, "dropped": {}}
"""

from __future__ import annotations

import gzip
import logging
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests
from opentelemetry.sdk.trace import ReadableSpan

from ..delivery.sender import retry_after_seconds
from ..version import __version__
from .otlp_writer import encode_spans
from .privacy import ExportRule

__all__ = ["GZIP_LEVEL", "TRACES_PATH", "TraceSender"]

TRACES_PATH = "/i/v1/traces"
GZIP_LEVEL = 1
_MAX_WAIT = 30.0
_logger = logging.getLogger("posthog.otel")


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


class TraceSender:
    """See the module docstring. Used from one thread at a time (the export queue's)."""

    #: First retry delay in seconds; doubles per attempt (with jitter).
    backoff_base = 1.0

    def __init__(
        self,
        host: str,
        api_key: str,
        *,
        timeout: float = 15.0,
        max_attempts: int = 6,
        rule: ExportRule | None = None,
    ) -> None:
        self._rule = rule
        self.url = host.rstrip("/") + TRACES_PATH
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            "User-Agent": f"posthog-otel/{__version__}",
        }
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy/netrc credentials from the environment
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._exported = 0
        self._batches = 0
        self._requests = 0
        self._dropped: dict[str, int] = {}
        self.last_error: str | None = None

    def send(self, spans: Sequence[ReadableSpan], deadline: float | None = None) -> None:
        """Export ``spans``; ``deadline`` (``time.monotonic()``) bounds the retries too.

        Never raises: what cannot be sent is counted as dropped."""
        if not spans:
            return
        try:
            body = gzip.compress(encode_spans(spans, self._rule), compresslevel=GZIP_LEVEL, mtime=0)
        except Exception as exc:
            _logger.debug("posthog-otel could not encode spans", exc_info=True)
            self._drop("failed", len(spans), f"encoding failed: {exc!r}")
            return
        budget = time.monotonic() + self._timeout
        deadline = budget if deadline is None else min(deadline, budget)
        status = self._post(body, len(spans), deadline)
        if status == 413:
            if len(spans) == 1:
                self._drop("too_large", 1, "a single span was refused as too large (413)")
                return
            half = len(spans) // 2
            self.send(spans[:half], deadline)
            self.send(spans[half:], deadline)

    def _post(self, body: bytes, count: int, deadline: float) -> int | None:
        """Post with retries; the final status (413 is left to the caller to split)."""
        error = "no answer"
        for attempt in range(self._max_attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop.is_set():
                break
            wait: float | None = None
            try:
                with self._lock:
                    self._requests += 1
                response = self._session.post(
                    self.url, data=body, headers=self._headers, timeout=remaining
                )
                status = response.status_code
                response.close()
            except requests.RequestException as exc:
                error = f"no answer ({type(exc).__name__})"
            else:
                if 200 <= status < 300:
                    with self._lock:
                        self._exported += count
                        self._batches += 1
                    return status
                if status == 413:
                    return status
                error = f"HTTP {status}"
                if not _retryable(status):
                    self._drop("rejected", count, error)
                    return status
                wait = retry_after_seconds(response.headers.get("Retry-After"))
            backoff = self.backoff_base * (2.0**attempt) * random.uniform(0.5, 1.0)
            delay = min(_MAX_WAIT, max(backoff, wait or 0.0))
            if attempt + 1 >= self._max_attempts or time.monotonic() + delay > deadline:
                break
            if self._stop.wait(delay):
                break
        self._drop("failed", count, f"{error}; gave up after retries or at the deadline")
        return None

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
                "requests": self._requests,
                "dropped": dict(self._dropped),
            }

    def shutdown(self) -> None:
        """Abort retry waits; a request in flight finishes within its own timeout."""
        self._stop.set()

    def after_fork(self) -> None:
        """A forked child gets its own HTTP session (the parent's sockets are not its own)."""
        self._session = requests.Session()
        self._session.trust_env = False
        self._lock = threading.Lock()
