"""Exporting an OpenTelemetry signal to one of PostHog's OTLP endpoints, off the caller's thread.

:class:`OtlpExport` is the OTLP counterpart of :class:`~.transport.Transport`: a bounded
:class:`~.queue.WorkQueue` (at most ``max_queue_size`` items and ``max_queue_bytes`` of
estimated size; drops counted as ``queue_full``) whose thread encodes batches with the given
``encode`` function (OTLP protobuf) and posts them to ``{host}{path}`` with
``Authorization: Bearer <project API key>``, gzip (the ``gzip`` option), ``max_batch_bytes``
per request. Network errors, timeouts, 408, 429 and 5xx are retried with exponential backoff
and jitter, ``Retry-After`` honoured (capped at 30 s); a 413 splits the batch in halves (one
item that PostHog still refuses is dropped as ``too_large``); other 4xx are dropped as
``rejected``; the items a 2xx answer's OTLP ``partial_success`` says were rejected
(``rejected_spans``, ``rejected_log_records``) are counted as ``rejected`` too, its
``error_message`` kept as the last error. Bodies are gzipped at level 1 (:data:`GZIP_LEVEL`).
Only these headers go out: no ``OTEL_EXPORTER_OTLP_*HEADERS`` (meant for the app's own
backend) and no proxy or netrc credentials from the environment. ``timeout`` bounds each whole
post; a shutdown bounds every wait and post by its
deadline, as for events. Every item is either sent or counted as dropped with a reason in
:meth:`OtlpExport.stats`, in the shape of the event transport's stats.

Posts run with OpenTelemetry instrumentation suppressed, so uploads make no spans; code that
must not feed the export with its own activity (a log record logged by the HTTP stack while
posting) asks :meth:`OtlpExport.on_export_thread`.

Usage::

    export = OtlpExport(settings, "/i/v1/logs", "logs", encode=encode_batch, size_of=estimate)
    # the queue's bounds and interval default to the client's; a signal may give its own
    export = OtlpExport(settings, "/i/v1/traces", "traces", encode=encode_spans,
                        size_of=estimate_span_bytes, max_queue_size=2048, flush_interval=5)
    export.put(record)           # never blocks; False when dropped (counted)
    export.flush(timeout=5)
    export.stats()               # {"captured": 1, "sent": 1, "dropped": {}, ...}
    export.shutdown(timeout=5)
"""

from __future__ import annotations

import gzip as gzip_module
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from opentelemetry import context as otel_context

from ..config import DEFAULT_HOST, ClientSettings
from ..context import runtime
from ..otlp.responses import read_export_response
from ..version import __version__
from . import _http
from .accounting import WarnOnce, delivery_stats
from .queue import WorkQueue
from .sender import retry_after_seconds

if TYPE_CHECKING:  # imported on the first post (fork-safe): see _http
    from .deadline import DeadlineSession

__all__ = ["GZIP_LEVEL", "OtlpExport"]

_T = TypeVar("_T")
_logger = logging.getLogger("posthog.otel")

_MAX_BACKOFF = 30.0
_BATCH_SIZE = 512  # items per request at most (OpenTelemetry's batch processors' default)
_USER_AGENT = f"posthog-otel/{__version__}"
#: gzip level of every OTLP body: a fifth of level 9's CPU for a body ~3% larger.
GZIP_LEVEL = 1
_ACCEPTED: tuple[int, str] = (0, "")
_thread_marks = threading.local()


class _Failure(Exception):
    def __init__(self, reason: str, message: str, sent: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.sent = sent  # the body went out; only the answer is missing


class OtlpExport(Generic[_T]):
    """Bounded queue + background OTLP/HTTP poster for one signal. See the module docstring."""

    #: First retry delay in seconds; doubles per attempt (with jitter), capped at 30 s.
    backoff_base = 1.0

    def __init__(
        self,
        settings: ClientSettings,
        path: str,
        signal: str,
        *,
        encode: Callable[[Sequence[_T]], bytes],
        size_of: Callable[[_T], int],
        batch_size: int = _BATCH_SIZE,
        max_queue_size: int | None = None,
        max_queue_bytes: int | None = None,
        flush_interval: float | None = None,
    ) -> None:
        if not settings.api_key:
            raise ValueError("an OTLP export needs an api_key")
        self._settings = settings
        self._signal = signal
        self._encode = encode
        self._size_of = size_of
        self.url = f"{settings.host or DEFAULT_HOST}{path}"
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "Authorization": f"Bearer {settings.api_key}",
            "User-Agent": _USER_AGENT,
        }
        if settings.gzip:
            self._headers["Content-Encoding"] = "gzip"
        max_size = settings.max_queue_size if max_queue_size is None else max_queue_size
        max_bytes = settings.max_queue_bytes if max_queue_bytes is None else max_queue_bytes
        self._queue: WorkQueue[_T] = WorkQueue(
            f"posthog-otel-{signal}",
            self._send,
            max_size=max_size,
            max_bytes=max_bytes,
            size_of=size_of,
            batch_size=batch_size,
            interval=settings.flush_interval if flush_interval is None else flush_interval,
            flush_order=0,
            shutdown_timeout=settings.shutdown_timeout,
            full_warning=(
                f"PostHog {signal} queue is full (max_queue_size={max_size}, "
                f"max_queue_bytes={max_bytes}); dropping new {signal} until it drains"
            ),
            drained_warning=f"PostHog {signal} queue drained; %d were dropped while full",
            on_thread_start=_export_thread_start,
            after_fork=self._reset,
        )
        self._warn_once = WarnOnce(_logger)
        self._reset()

    def _reset(self) -> None:
        """Fresh counters and HTTP session (a forked child must not share its parent's)."""
        self._lock = threading.Lock()
        self._session: DeadlineSession | None = None
        self._sent = 0
        self._batches = 0
        self._requests = 0
        self._retries = 0
        self._dropped: dict[str, int] = {}
        self._last_error: str | None = None

    # -- caller side ----------------------------------------------------------------------

    @staticmethod
    def on_export_thread() -> bool:
        """True on a thread that posts OTLP exports (whatever it logs must not be exported)."""
        return getattr(_thread_marks, "exporting", False)

    def put(self, item: _T) -> bool:
        """Queue one item; never blocks, never raises; False when dropped (and counted)."""
        return self._queue.put(item)

    def count_dropped(self, reason: str, count: int = 1) -> None:
        """Count items the caller kept out of the export (e.g. ``privacy``) in :meth:`stats`."""
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + count

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued so far; True when it was all sent or dropped in time."""
        return self._queue.flush(timeout)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush within ``timeout`` (default ``shutdown_timeout``), then stop the thread."""
        budget = self._settings.shutdown_timeout if timeout is None else timeout
        delivered = self._queue.shutdown(budget)
        if not self._queue.running:
            session, self._session = self._session, None
            if session is not None:
                session.close()
        return delivered

    @property
    def closed(self) -> bool:
        return self._queue.closed

    def stats(self) -> dict[str, Any]:
        """Counters: captured, queued, sent, batches, retries, dropped by reason, last error."""
        queue = self._queue.counts()
        with self._lock:
            dropped = dict(self._dropped)
            sent, batches, requests_made, retries, last_error = (
                self._sent,
                self._batches,
                self._requests,
                self._retries,
                self._last_error,
            )
        return delivery_stats(
            queue,
            dropped,
            sent=sent,
            batches=batches,
            requests=requests_made,
            retries=retries,
            last_error=last_error,
        )

    # -- the queue's thread ---------------------------------------------------------------

    def _send(self, items: list[_T]) -> None:
        self._deliver(items)

    def _deliver(self, items: Sequence[_T]) -> None:
        """Encode and post ``items``; every one ends up sent or counted as dropped."""
        try:
            body = self._encode(items)
        except Exception as exc:
            if len(items) > 1:  # find the item that cannot be encoded; keep the others
                self._halves(items)
                return
            self._drop("invalid", 1, f"a {self._signal} record could not be encoded: {exc}")
            return
        if len(body) > self._settings.max_batch_bytes:
            if len(items) > 1:
                self._halves(items)
                return
            self._drop(
                "too_large",
                1,
                f"a {self._signal} record is {len(body)} bytes, over max_batch_bytes",
            )
            return
        try:
            rejected, message = self._post_with_retries(body)
        except _Failure as failure:
            if failure.reason == "too_large" and len(items) > 1:  # 413: split and retry halves
                self._halves(items)
                return
            self._drop(failure.reason, len(items), str(failure))
            return
        rejected = min(rejected, len(items))
        with self._lock:
            self._sent += len(items) - rejected
            self._batches += 1
        if rejected:
            self._warn_once(
                "partial",
                "PostHog accepted a %s batch but rejected %d of its items: %s",
                self._signal,
                rejected,
                message or "no reason given",
            )
            self._drop("rejected", rejected, f"partially rejected: {message or 'no reason'}")

    def _halves(self, items: Sequence[_T]) -> None:
        half = len(items) // 2
        self._deliver(items[:half])
        self._deliver(items[half:])

    def _post_with_retries(self, body: bytes) -> tuple[int, str]:
        """Post until answered 2xx: (items PostHog's ``partial_success`` rejected, its message).

        Raises :class:`_Failure` when the batch is not accepted."""
        queue = self._queue
        if self._settings.gzip:
            body = gzip_module.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        attempt = 0
        while True:
            failure, retry_after, partial = self._post_once(body)
            if failure is None:
                return partial
            if failure.reason != "retryable" or attempt >= self._settings.max_retries:
                if failure.reason == "retryable":
                    failure.reason = "unacknowledged" if failure.sent else "failed"
                raise failure
            delay = min(_MAX_BACKOFF, self.backoff_base * (2.0**attempt) * random.uniform(0.5, 1))
            if retry_after is not None:
                delay = max(delay, min(retry_after, _MAX_BACKOFF))
            deadline = queue.deadline
            if deadline is not None and time.monotonic() + delay > deadline:
                failure.reason = "unacknowledged" if failure.sent else "shutdown"
                raise failure
            attempt += 1
            with self._lock:
                self._retries += 1
            wake_at = time.monotonic() + delay
            if queue.wait_for_stop(delay):  # a shutdown began while waiting: keep its budget
                remaining = wake_at - time.monotonic()
                if remaining > 0:
                    deadline = queue.deadline
                    if deadline is not None and wake_at > deadline:
                        failure.reason = "unacknowledged" if failure.sent else "shutdown"
                        raise failure
                    time.sleep(remaining)

    def _post_once(self, body: bytes) -> tuple[_Failure | None, float | None, tuple[int, str]]:
        """One HTTP attempt: (failure or None, ``Retry-After`` seconds, partial success)."""
        timeout = self._settings.timeout
        started = time.monotonic()
        queue = self._queue
        deadline = queue.deadline
        if deadline is not None:
            timeout = max(0.05, min(timeout, deadline - started))
        post_deadline = started + timeout

        def ends_at() -> float:  # a shutdown that starts meanwhile brings the end forward
            current = queue.deadline
            return post_deadline if current is None else min(post_deadline, current)

        http = _http.load()
        session = self._session
        if session is None:
            session = self._session = http.DeadlineSession()
            session.trust_env = False  # no proxy or netrc credentials from the environment
        with self._lock:
            self._requests += 1
        token = otel_context.attach(runtime.suppressed_context())
        watch = http.Watch(ends_at)
        try:
            with watch:
                response = session.post(self.url, data=body, headers=self._headers, timeout=timeout)
        except http.requests.RequestException as exc:
            sent = watch.body_sent
            self._warn_once(
                "network",
                "PostHog's %s endpoint is unreachable at %s (%s)%s",
                self._signal,
                self.url,
                type(exc).__name__,
                self._then(),
            )
            failure = _Failure("retryable", f"unreachable ({type(exc).__name__})", sent)
            return failure, None, _ACCEPTED
        finally:
            otel_context.detach(token)
        status = response.status_code
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        answer = response.content if 200 <= status < 300 else b""
        response.close()
        if 200 <= status < 300:
            return None, None, read_export_response(answer)
        message = f"PostHog answered HTTP {status}"
        if status in (408, 429) or status >= 500:
            self._warn_once(
                f"status-{status}",
                "PostHog answered HTTP %d at %s%s",
                status,
                self.url,
                self._then(),
            )
            return _Failure("retryable", message), retry_after, _ACCEPTED
        if status == 413:
            return _Failure("too_large", message), None, _ACCEPTED
        self._warn_once(
            f"status-{status}",
            "PostHog rejected %s with HTTP %d at %s; they are dropped",
            self._signal,
            status,
            self.url,
        )
        return _Failure("rejected", message), None, _ACCEPTED

    def _then(self) -> str:
        if self._settings.max_retries > 0:
            return f"; retrying (up to {self._settings.max_retries} times)"
        return f"; not retried (max_retries=0), these {self._signal} are dropped"

    # -- accounting -----------------------------------------------------------------------

    def _drop(self, reason: str, count: int, message: str) -> None:
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + count
            self._last_error = message
        _logger.debug(
            "posthog-otel: %d %s record(s) dropped (%s): %s", count, self._signal, reason, message
        )


def _export_thread_start() -> None:
    """The export thread's context: uploads create no spans and carry no baggage; what the
    thread logs (the HTTP stack's debug lines) is recognisably ours."""
    _thread_marks.exporting = True
    otel_context.attach(runtime.suppressed_context())
