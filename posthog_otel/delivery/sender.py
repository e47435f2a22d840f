"""Posting batches of events to PostHog's ``/batch/`` endpoint: encoding, gzip, retries.

:class:`BatchSender` turns a list of events into one or more request bodies (``max_batch_bytes``
each; an event over ``max_event_bytes`` or not encodable is dropped and counted) and posts them
over one ``requests.Session``. Network errors, timeouts, 408, 429 and 5xx are retried with
exponential backoff and jitter, honouring ``Retry-After``; a 413 splits the batch in halves;
other 4xx go to ``on_error`` and are counted. ``timeout`` bounds each whole post (not each
socket read: :mod:`.deadline`). Within a shutdown, no wait or request outlives the deadline,
including a post already in flight when the shutdown began: a batch given up there counts as
``shutdown``, or as ``unacknowledged`` when its body was sent and only the answer is missing
(PostHog may have ingested it). A batch whose last attempt was sent but got no readable answer
(a broken response, a connection closed mid-answer, the post's deadline) also counts as
``unacknowledged`` once retries run out.

Requests run with OpenTelemetry instrumentation suppressed and an otherwise empty context, so
uploads create no spans and carry no baggage or tracing headers.

Usage (the :class:`~posthog_otel.delivery.transport.Transport` does this on its queue's thread)::

    sender = BatchSender(settings, shutdown=queue)   # queue: deadline + wait_for_stop
    sender.send(events, backoff_base=1.0)
    sender.counts()  # SenderCounts(sent=..., batches=..., retries=..., dropped={...}, ...)
"""

from __future__ import annotations

import gzip as gzip_module
import json
import logging
import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import context as otel_context

from ..config import ClientSettings
from ..context import runtime
from ..version import __version__
from . import _http
from . import encoding as _json
from .accounting import WarnOnce

if TYPE_CHECKING:  # imported on the first send (fork-safe): see _http
    import requests

__all__ = ["BatchSender", "SenderCounts", "ShutdownSignal", "retry_after_seconds"]

_logger = logging.getLogger("posthog.otel")

_RETRY_STATUSES = frozenset({408, 429})
_MAX_BACKOFF = 30.0
_USER_AGENT = f"posthog-otel/{__version__}"


class ShutdownSignal(Protocol):
    """What the sender needs of its queue's shutdown (a :class:`~.queue.WorkQueue` is one)."""

    @property
    def deadline(self) -> float | None: ...

    def wait_for_stop(self, seconds: float) -> bool: ...


@dataclass(frozen=True)
class SenderCounts:
    sent: int
    batches: int
    retries: int
    dropped: dict[str, int]
    last_error: str | None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Parse a ``Retry-After`` header (delta seconds or HTTP date); None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def _unanswered(message: str) -> Exception:
    """The error of a post whose body was sent but whose answer did not come (or could not
    be read): a ``ReadTimeout``, as ``requests`` reports a late answer."""
    read_timeout: type[Exception] = _http.load().requests.exceptions.ReadTimeout
    return read_timeout(message)


def _was_sent(error: Exception) -> bool:
    return isinstance(error, _http.load().requests.exceptions.ReadTimeout)


def _shutdown_reason(error: Exception) -> str:
    """Why a batch is given up at the shutdown deadline: ``unacknowledged`` when it was sent
    and only the answer is missing (PostHog may have ingested it), else ``shutdown``."""
    return "unacknowledged" if _was_sent(error) else "shutdown"


def _hint(status: int, url: str) -> str:
    if status in (401, 403):
        return " (is the project API key right?)"
    if status in (404, 405):
        if url.rstrip("/").endswith("/batch/batch"):
            return " (the host must not end in /batch/: give only the PostHog host)"
        return " (is the host right? give only the PostHog host, e.g. https://us.i.posthog.com)"
    return ""


class _SendFailure(Exception):
    """A batch could not be delivered; ``reason`` names the drop counter."""

    def __init__(self, reason: str, error: Exception) -> None:
        super().__init__(str(error))
        self.reason = reason
        self.error = error


class BatchSender:
    """Encodes and posts batches for one PostHog project. See the module docstring."""

    def __init__(self, settings: ClientSettings, shutdown: ShutdownSignal) -> None:
        self._settings = settings
        self._shutdown = shutdown
        self._api_key_json = json.dumps(settings.api_key)
        self._url = settings.endpoint
        # why the latest attempt failed (None after a success): for the exit summary
        self.last_attempt_error: str | None = None
        self._warn_once = WarnOnce(_logger)
        self.reset()

    def reset(self) -> None:
        """Fresh counters and HTTP session (a forked child must not share its parent's)."""
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._sent = 0
        self._batches = 0
        self._retries = 0
        self._dropped: dict[str, int] = {}
        self._last_error: str | None = None

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def counts(self) -> SenderCounts:
        with self._lock:
            return SenderCounts(
                self._sent, self._batches, self._retries, dict(self._dropped), self._last_error
            )

    def send(self, events: list[dict[str, Any]], backoff_base: float) -> None:
        """Deliver ``events``; every one ends up sent or counted as dropped with a reason.

        ``backoff_base`` is the first retry delay in seconds, doubled per attempt.
        """
        for chunk_events, chunk in self._encode(events):
            self._deliver(chunk_events, chunk, backoff_base)

    # -- encoding -------------------------------------------------------------------------

    def _encode(
        self, events: list[dict[str, Any]]
    ) -> list[tuple[list[dict[str, Any]], list[bytes]]]:
        """JSON-encode each event; drop oversized or unencodable ones; split at max bytes."""
        max_event = self._settings.max_event_bytes
        max_batch = self._settings.max_batch_bytes - 1024
        chunks: list[tuple[list[dict[str, Any]], list[bytes]]] = []
        current_events: list[dict[str, Any]] = []
        current: list[bytes] = []
        size = 0
        for event in events:
            try:
                encoded = _json.dumps_event(event)
            except Exception as exc:
                self._count_drop("invalid", 1)
                self._warn_once(
                    "invalid", "PostHog event %r could not be encoded: %s", event.get("event"), exc
                )
                continue
            if len(encoded) > max_event:
                self._count_drop("too_large", 1)
                _logger.warning(
                    "PostHog event %r (uuid %s) is %d bytes, over the %d byte limit; dropped",
                    event.get("event"),
                    event.get("uuid"),
                    len(encoded),
                    max_event,
                )
                continue
            if current and size + len(encoded) > max_batch:
                chunks.append((current_events, current))
                current_events, current, size = [], [], 0
            current_events.append(event)
            current.append(encoded)
            size += len(encoded) + 1
        if current:
            chunks.append((current_events, current))
        return chunks

    def _body(self, encoded: list[bytes]) -> bytes:
        sent_at = datetime.now(timezone.utc).isoformat()
        head = (
            f'{{"api_key":{self._api_key_json},'
            f'"historical_migration":{"true" if self._settings.historical_migration else "false"},'
            f'"sent_at":"{sent_at}","batch":['
        ).encode()
        body = head + b",".join(encoded) + b"]}"
        if self._settings.gzip:
            return gzip_module.compress(body, compresslevel=5)
        return body

    # -- posting --------------------------------------------------------------------------

    def _deliver(
        self, events: list[dict[str, Any]], encoded: list[bytes], backoff_base: float
    ) -> None:
        try:
            self._post_with_retries(encoded, backoff_base)
        except _SendFailure as failure:
            if failure.reason == "too_large" and len(encoded) > 1:  # 413: split and retry halves
                half = len(encoded) // 2
                self._deliver(events[:half], encoded[:half], backoff_base)
                self._deliver(events[half:], encoded[half:], backoff_base)
                return
            self._count_drop(failure.reason, len(encoded))
            with self._lock:
                self._last_error = str(failure)
            self._report_error(failure.error, events)
            return
        with self._lock:
            self._sent += len(encoded)
            self._batches += 1

    def _post_with_retries(self, encoded: list[bytes], backoff_base: float) -> None:
        shutdown = self._shutdown
        attempt = 0
        while True:
            error, retry_after, reason = self._post_once(encoded)
            if error is None:
                return
            if reason != "retryable" or attempt >= self._settings.max_retries:
                if reason == "retryable":
                    reason = "unacknowledged" if _was_sent(error) else "failed"
                raise _SendFailure(reason, error)
            delay = min(_MAX_BACKOFF, backoff_base * (2.0**attempt) * random.uniform(0.5, 1.0))
            if retry_after is not None:
                delay = max(delay, min(retry_after, _MAX_BACKOFF))
            deadline = shutdown.deadline
            if deadline is not None and time.monotonic() + delay > deadline:
                raise _SendFailure(_shutdown_reason(error), error)
            attempt += 1
            with self._lock:
                self._retries += 1
            wake_at = time.monotonic() + delay
            if shutdown.wait_for_stop(delay):  # shutdown began while waiting: keep its budget
                remaining = wake_at - time.monotonic()
                if remaining > 0:
                    deadline = shutdown.deadline
                    if deadline is not None and wake_at > deadline:
                        raise _SendFailure(_shutdown_reason(error), error)
                    time.sleep(remaining)

    def _post_once(self, encoded: list[bytes]) -> tuple[Exception | None, float | None, str]:
        """One HTTP attempt. Returns (error or None, Retry-After seconds, failure kind)."""
        timeout = self._settings.timeout
        started = time.monotonic()
        deadline = self._shutdown.deadline
        if deadline is not None:
            timeout = max(0.05, min(timeout, deadline - started))
        post_deadline = started + timeout
        shutdown = self._shutdown

        def ends_at() -> float:  # a shutdown that starts meanwhile brings the end forward
            current = shutdown.deadline
            return post_deadline if current is None else min(post_deadline, current)

        headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
        if self._settings.gzip:
            headers["Content-Encoding"] = "gzip"
        http = _http.load()
        requests = http.requests
        session = self._session
        if session is None:
            session = self._session = http.DeadlineSession()
        body = self._body(encoded)
        token = otel_context.attach(runtime.suppressed_context())
        watch = http.Watch(ends_at)
        try:
            with watch:
                response = session.post(self._url, data=body, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            error: Exception = exc
            if watch.body_sent and not isinstance(exc, requests.exceptions.ReadTimeout):
                error = _unanswered(f"no readable answer: {exc}")  # sent: maybe ingested
            if watch.aborted:
                error = (
                    _unanswered(f"no answer within {timeout:g} s")
                    if watch.body_sent
                    else requests.exceptions.ConnectTimeout(f"not sent within {timeout:g} s")
                )
            self.last_attempt_error = f"PostHog is unreachable ({type(exc).__name__})"
            self._warn_once(
                "network",
                "PostHog is unreachable at %s (%s)%s",
                self._url,
                type(error).__name__,
                self._then(),
            )
            return error, None, "retryable"
        finally:
            otel_context.detach(token)
        status = response.status_code
        response.close()
        if status == 200:
            self.last_attempt_error = None
            return None, None, ""
        self.last_attempt_error = f"PostHog answered HTTP {status}"
        error = requests.HTTPError(f"PostHog answered HTTP {status}", response=response)
        if status in _RETRY_STATUSES or status >= 500:
            self._warn_once(
                f"status-{status}",
                "PostHog answered HTTP %d at %s%s",
                status,
                self._url,
                self._then(),
            )
            return error, retry_after_seconds(response.headers.get("Retry-After")), "retryable"
        if status == 413:
            return error, None, "too_large"
        self._warn_once(
            f"status-{status}",
            "PostHog rejected a batch with HTTP %d at %s%s; these events are dropped",
            status,
            self._url,
            _hint(status, self._url),
        )
        return error, None, "rejected"

    def _then(self) -> str:
        """What happens after a retryable failure, as the end of a log line."""
        if self._settings.max_retries > 0:
            return f"; retrying (up to {self._settings.max_retries} times)"
        return "; not retried (max_retries=0), these events are dropped"

    @property
    def url(self) -> str:
        return self._url

    # -- accounting -----------------------------------------------------------------------

    def _count_drop(self, reason: str, count: int) -> None:
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + count

    def _report_error(self, error: Exception, events: list[dict[str, Any]]) -> None:
        on_error = self._settings.on_error
        if on_error is None:
            _logger.debug("PostHog batch of %d events dropped: %s", len(events), error)
            return
        try:
            on_error(error, events)
        except Exception:
            _logger.warning("PostHog on_error callback raised", exc_info=True)
