"""Delivery of events to PostHog's ``/batch/`` endpoint, off the caller's thread.

``capture()`` only appends to a bounded in-memory queue; a background sender thread turns the
queue into batches (``flush_at`` events, ``flush_interval`` seconds, or 5 MiB), serialises them
to JSON, gzips them and posts them over one ``requests.Session``. Network errors, timeouts,
408, 429 and 5xx are retried with exponential backoff and jitter, honouring ``Retry-After``;
other 4xx go to ``on_error`` and are counted. Every event is either sent or counted as dropped
with a reason in :meth:`Transport.stats`; ``unacknowledged`` marks batches that were sent but
not answered before the shutdown deadline (PostHog may have ingested them).

Usage (the :class:`~posthog_otel.client.Client` does this for you)::

    transport = Transport(ClientSettings.build(api_key="phc_...", host="http://127.0.0.1:8010"))
    transport.enqueue({"event": "signup", "distinct_id": "u1", "properties": {}, ...})
    transport.flush(timeout=5)
    transport.stats()  # {"captured": 1, "sent": 1, "dropped": {}, ...}

The sender runs with OpenTelemetry instrumentation suppressed and an otherwise empty context,
so uploads create no spans and carry no baggage or tracing headers. After ``os.fork()`` the
child gets a new queue, sender thread and HTTP session; what it captures, it delivers.
``multiprocessing`` children started with ``fork`` or ``forkserver`` leave through
``os._exit()``, which skips ``atexit``; a ``multiprocessing`` exit finalizer flushes them too.
"""

from __future__ import annotations

import atexit
import gzip as gzip_module
import json
import logging
import math
import os
import random
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from opentelemetry import context as otel_context

from ..config import ClientSettings
from ..version import __version__
from . import encoding as _json
from .queue import Counter

__all__ = ["Transport", "live_transports"]

_logger = logging.getLogger("posthog_otel")

_RETRY_STATUSES = frozenset({408, 429})
_MAX_BACKOFF = 30.0
_USER_AGENT = f"posthog-otel/{__version__}"
_live: weakref.WeakSet[Transport] = weakref.WeakSet()


def live_transports() -> list[Transport]:
    """Every transport of this process that has not been garbage-collected."""
    return list(_live)


def _suppressed_context() -> otel_context.Context:
    """An empty Context with instrumentation suppressed: no spans, no baggage on uploads."""
    ctx = otel_context.Context()
    ctx = otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True, ctx)
    return otel_context.set_value(otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY, True, ctx)


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


def _shutdown_reason(error: Exception) -> str:
    """Why a batch is given up at the shutdown deadline: ``unacknowledged`` when it was sent
    and only the answer is missing (PostHog may have ingested it), else ``shutdown``."""
    return "unacknowledged" if isinstance(error, requests.exceptions.ReadTimeout) else "shutdown"


class _SendFailure(Exception):
    """A batch could not be delivered; ``reason`` names the drop counter."""

    def __init__(self, reason: str, error: Exception) -> None:
        super().__init__(str(error))
        self.reason = reason
        self.error = error


class Transport:
    """Bounded queue + background sender for one PostHog project. See the module docstring."""

    #: First retry delay in seconds; doubles per attempt (with jitter), capped at 30 s.
    backoff_base = 1.0

    def __init__(self, settings: ClientSettings) -> None:
        if not settings.api_key:
            raise ValueError("Transport needs an api_key")
        self._settings = settings
        self._api_key_json = json.dumps(settings.api_key)
        self._url = settings.endpoint
        self._reset_state()
        self._closed = False
        self._warned: set[str] = set()
        self._mp_hooked = False
        self_ref = weakref.ref(self)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=lambda: _call_if_alive(self_ref, "_after_fork"))
        atexit.register(_call_if_alive, self_ref, "_at_exit")
        self._hook_multiprocessing()
        _live.add(self)

    # -- state ----------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = threading.Condition(threading.Lock())
        self._drop_lock = threading.Lock()
        self._session: requests.Session | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._captured = Counter()
        self._accepted = Counter()
        self._processed = 0  # events taken off the queue and finished (sent or dropped)
        self._in_flight = 0
        self._sent = 0
        self._batches = 0
        self._retries = 0
        self._dropped: dict[str, int] = {}
        self._overflow_in_burst = 0
        self._last_error: str | None = None
        self._deadline: float | None = None
        self._flush_until = 0  # flush() wants every event accepted before this count sent now

    def _after_fork(self) -> None:
        # The parent still owns what it had queued; the child starts empty and sends its own.
        self._reset_state()
        if not self._mp_hooked:  # multiprocessing imported after this transport was built
            self._hook_multiprocessing()

    def _hook_multiprocessing(self) -> None:
        """Flush when a ``multiprocessing`` child exits: its ``os._exit()`` skips ``atexit``.

        A process's exit finalizers are cleared when a child starts, so the finalizer is
        registered again there, by an after-fork callback. Nothing happens unless the app
        imported ``multiprocessing``.
        """
        util = sys.modules.get("multiprocessing.util")
        if util is None:
            return
        try:
            _register_mp_finalizer(self)
            util.register_after_fork(self, _register_mp_finalizer)
            self._mp_hooked = True
        except Exception:
            _logger.debug("posthog-otel could not hook multiprocessing exit", exc_info=True)

    # -- caller side ----------------------------------------------------------------------

    def enqueue(self, event: dict[str, Any]) -> bool:
        """Queue one event (a dict in PostHog's event shape); never blocks, never raises."""
        self._captured.increment()
        if self._closed:
            self._count_drop("shutdown", 1)
            return False
        if self._settings.sync_mode:
            self._in_flight += 1
            self._send_now([event])
            return True
        queue = self._queue
        if len(queue) >= self._settings.max_queue_size:
            self._overflow()
            return False
        queue.append(event)
        self._accepted.increment()
        if self._thread is None:
            self._start()
        if len(queue) >= self._settings.flush_at and not self._wake.is_set():
            self._wake.set()
        return True

    def _overflow(self) -> None:
        with self._drop_lock:
            self._dropped["queue_full"] = self._dropped.get("queue_full", 0) + 1
            self._overflow_in_burst += 1
            first = self._overflow_in_burst == 1
        if first:
            _logger.warning(
                "PostHog event queue is full (max_queue_size=%d); dropping new events until "
                "it drains",
                self._settings.max_queue_size,
            )

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="posthog-otel-sender", daemon=True)
            self._thread = thread
            thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued so far; True when it was all sent or dropped in time."""
        target = self._accepted.value
        if self._thread is None or self._thread is threading.current_thread():
            return self._processed >= target
        self._flush_until = max(self._flush_until, target)
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._progress:
            while self._processed < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._wake.set()
                self._progress.wait(0.05 if remaining is None else min(remaining, 0.05))
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush within ``timeout`` (default ``shutdown_timeout``), then stop the sender.

        Events that cannot be delivered within the budget are counted as dropped
        (``shutdown``); events captured afterwards are dropped too.
        """
        budget = self._settings.shutdown_timeout if timeout is None else timeout
        self._closed = True
        self._deadline = time.monotonic() + budget
        delivered = self.flush(budget)
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, self._deadline - time.monotonic()) + 0.05)
        # What is still queued is ours to count. A batch the sender already took stays its
        # own: it settles it (sent, or dropped as "shutdown") within moments, since no request
        # outlives the deadline by more than its 0.05 s floor. Counting it here as well would
        # count those events twice, or as dropped although they were delivered.
        leftover = 0
        queue = self._queue
        while True:
            try:
                queue.popleft()
            except IndexError:
                break
            leftover += 1
        if leftover:
            self._count_drop("shutdown", leftover)
            with self._progress:
                self._processed += leftover
                self._progress.notify_all()
        if self._session is not None and (thread is None or not thread.is_alive()):
            self._session.close()
        return delivered and not leftover and not self._in_flight

    def _at_exit(self) -> None:
        # Flush, but stay open: a TracerProvider whose atexit shutdown runs after ours still
        # exports spans into this client, and its exporter flushes again.
        if not self._closed:
            try:
                self.flush(self._settings.shutdown_timeout)
            except Exception:  # interpreter teardown: never raise
                _logger.debug("posthog-otel atexit flush failed", exc_info=True)

    @property
    def shutdown_timeout(self) -> float:
        return self._settings.shutdown_timeout

    @property
    def closed(self) -> bool:
        return self._closed

    def stats(self) -> dict[str, Any]:
        """Counters: captured, queued, sent, batches, retries, dropped by reason, last error."""
        with self._drop_lock:
            dropped = dict(self._dropped)
        return {
            "captured": self._captured.value,
            "queued": len(self._queue) + self._in_flight,
            "sent": self._sent,
            "batches": self._batches,
            "retries": self._retries,
            "dropped": dropped,
            "dropped_total": sum(dropped.values()),
            "last_error": self._last_error,
        }

    # -- sender side ----------------------------------------------------------------------

    def _run(self) -> None:
        otel_context.attach(_suppressed_context())
        interval = self._settings.flush_interval
        while True:
            interval_elapsed = not self._wake.wait(interval)
            self._wake.clear()
            try:
                self._drain(interval_elapsed)
            except Exception:  # a bug here must not kill delivery for good
                _logger.exception("posthog-otel sender failed; continuing")
            if self._stop.is_set() and (not self._queue or self._past_deadline()):
                return

    def _past_deadline(self) -> bool:
        """Whether shutdown's budget is spent (then no new batch is started)."""
        deadline = self._deadline
        return deadline is not None and time.monotonic() >= deadline

    def _drain(self, interval_elapsed: bool = True) -> None:
        queue = self._queue
        flush_at = self._settings.flush_at
        while queue:
            if self._past_deadline():
                return  # shutdown counts what is left
            if (
                len(queue) < flush_at
                and not interval_elapsed
                and not self._stop.is_set()
                and self._processed + self._in_flight >= self._flush_until
            ):
                break  # a partial batch waits for flush_interval, or for a flush()
            batch = self._take_batch()
            if not batch:
                continue
            self._send_now(batch)
        if self._overflow_in_burst:
            with self._drop_lock:
                lost, self._overflow_in_burst = self._overflow_in_burst, 0
            _logger.warning("PostHog event queue drained; %d events were dropped while full", lost)

    def _take_batch(self) -> list[dict[str, Any]]:
        queue = self._queue
        batch: list[dict[str, Any]] = []
        limit = self._settings.flush_at
        while queue and len(batch) < limit:
            try:
                batch.append(queue.popleft())
            except IndexError:
                break
        self._in_flight += len(batch)
        return batch

    def _send_now(self, events: list[dict[str, Any]]) -> None:
        """Serialise, split by size, post with retries; account for every event."""
        try:
            chunks = self._encode(events)
            for chunk_events, chunk in chunks:
                self._deliver(chunk_events, chunk)
        finally:
            self._finish(len(events))

    def _finish(self, count: int) -> None:
        with self._progress:
            self._in_flight = max(0, self._in_flight - count)
            self._processed += count
            self._progress.notify_all()

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

    def _deliver(self, events: list[dict[str, Any]], encoded: list[bytes]) -> None:
        try:
            self._post_with_retries(encoded)
        except _SendFailure as failure:
            if failure.reason == "too_large" and len(encoded) > 1:  # 413: split and retry halves
                half = len(encoded) // 2
                self._deliver(events[:half], encoded[:half])
                self._deliver(events[half:], encoded[half:])
                return
            self._count_drop(failure.reason, len(encoded))
            self._last_error = str(failure)
            self._report_error(failure.error, events)
            return
        with self._progress:
            self._sent += len(encoded)
            self._batches += 1

    def _post_with_retries(self, encoded: list[bytes]) -> None:
        attempt = 0
        while True:
            error, retry_after, reason = self._post_once(encoded)
            if error is None:
                return
            if reason != "retryable" or attempt >= self._settings.max_retries:
                raise _SendFailure("failed" if reason == "retryable" else reason, error)
            delay = min(_MAX_BACKOFF, self.backoff_base * (2.0**attempt) * random.uniform(0.5, 1.0))
            if retry_after is not None:
                delay = max(delay, min(retry_after, _MAX_BACKOFF))
            if self._deadline is not None and time.monotonic() + delay > self._deadline:
                raise _SendFailure(_shutdown_reason(error), error)
            attempt += 1
            self._retries += 1
            wake_at = time.monotonic() + delay
            if self._stop.wait(delay):  # shutdown began while waiting: keep to its budget
                remaining = wake_at - time.monotonic()
                if remaining > 0:
                    if self._deadline is not None and wake_at > self._deadline:
                        raise _SendFailure(_shutdown_reason(error), error)
                    time.sleep(remaining)

    def _post_once(self, encoded: list[bytes]) -> tuple[Exception | None, float | None, str]:
        """One HTTP attempt. Returns (error or None, Retry-After seconds, failure kind)."""
        timeout = self._settings.timeout
        if self._deadline is not None:
            timeout = max(0.05, min(timeout, self._deadline - time.monotonic()))
        headers = {"Content-Type": "application/json", "User-Agent": _USER_AGENT}
        if self._settings.gzip:
            headers["Content-Encoding"] = "gzip"
        session = self._session
        if session is None:
            session = self._session = requests.Session()
        token = otel_context.attach(_suppressed_context())
        try:
            response = session.post(
                self._url, data=self._body(encoded), headers=headers, timeout=timeout
            )
        except requests.RequestException as exc:
            self._warn_once(
                "network",
                "PostHog is unreachable at %s (%s); retrying",
                self._url,
                type(exc).__name__,
            )
            return exc, None, "retryable"
        finally:
            otel_context.detach(token)
        status = response.status_code
        response.close()
        if status == 200:
            return None, None, ""
        error = requests.HTTPError(f"PostHog answered HTTP {status}", response=response)
        if status in _RETRY_STATUSES or status >= 500:
            self._warn_once(
                f"status-{status}", "PostHog answered HTTP %d at %s; retrying", status, self._url
            )
            return error, retry_after_seconds(response.headers.get("Retry-After")), "retryable"
        if status == 413:
            return error, None, "too_large"
        self._warn_once(
            f"status-{status}",
            "PostHog rejected a batch with HTTP %d%s; these events are dropped",
            status,
            " (is the project API key right?)" if status in (401, 403) else "",
        )
        return error, None, "rejected"

    # -- accounting -----------------------------------------------------------------------

    def _count_drop(self, reason: str, count: int) -> None:
        with self._drop_lock:
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

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key in self._warned:
            _logger.debug(message, *args)
            return
        self._warned.add(key)
        _logger.warning(message, *args)


def _register_mp_finalizer(transport: Transport) -> None:
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util.Finalize(
            None, _call_if_alive, args=(weakref.ref(transport), "_at_exit"), exitpriority=0
        )


def _call_if_alive(ref: weakref.ReferenceType[Transport], method: str) -> None:
    target = ref()
    if target is not None:
        callback: Callable[[], None] = getattr(target, method)
        callback()
