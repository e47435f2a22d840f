"""Delivery of events to PostHog's ``/batch/`` endpoint, off the caller's thread.

``capture()`` only appends to a bounded in-memory queue (:class:`~.queue.WorkQueue`: at most
``max_queue_size`` events and ``max_queue_bytes`` of estimated JSON, drops counted as
``queue_full``); its
thread turns the queue into batches (``flush_at`` events, ``flush_interval`` seconds) and the
:class:`~.sender.BatchSender` posts them: JSON, gzip, 5 MiB bodies, retries with backoff and
``Retry-After``. Every event is either sent or counted as dropped with a reason in
:meth:`Transport.stats`; ``unacknowledged`` marks batches that were sent but not answered before
the shutdown deadline (PostHog may have ingested them).

Usage (the :class:`~posthog_otel.client.Client` does this for you)::

    transport = Transport(ClientSettings.build(api_key="phc_...", host="http://127.0.0.1:8010"))
    transport.enqueue({"event": "signup", "distinct_id": "u1", "properties": {}, ...})
    transport.flush(timeout=5)
    transport.stats()  # {"captured": 1, "sent": 1, "dropped": {}, ...}

After ``os.fork()`` the child gets a new queue, sender thread and HTTP session; what it
captures, it delivers. The process's ``atexit`` flushes every transport. ``multiprocessing``
children started with ``fork`` or ``forkserver`` leave through ``os._exit()``, which skips
``atexit``; a ``multiprocessing`` exit finalizer flushes them too.

:meth:`Transport.flush`, :meth:`Transport.shutdown` and the exit flush first flush the span
processors' queues (:data:`~.queue.FEEDS_EVENTS`: their spans become events here; their thread
wakes only for a batch or after an interval), within the same budget.
"""

from __future__ import annotations

import atexit
import logging
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context

from ..config import ClientSettings
from ..context import runtime
from .accounting import delivery_stats
from .queue import FEEDS_EVENTS, WorkQueue, live_queues
from .sender import BatchSender, retry_after_seconds
from .sizing import approx_json_size

__all__ = ["Transport", "retry_after_seconds"]

_logger = logging.getLogger("posthog.otel")


class Transport:
    """Bounded queue + background sender for one PostHog project. See the module docstring."""

    #: First retry delay in seconds; doubles per attempt (with jitter), capped at 30 s.
    backoff_base = 1.0

    def __init__(self, settings: ClientSettings) -> None:
        if not settings.api_key:
            raise ValueError("Transport needs an api_key")
        self._settings = settings
        self._sync = settings.sync_mode
        self._mp_hooked = False
        self._queue: WorkQueue[dict[str, Any]] = WorkQueue(
            "posthog-otel-sender",
            self._send,
            max_size=settings.max_queue_size,
            max_bytes=settings.max_queue_bytes,
            size_of=approx_json_size,
            batch_size=settings.flush_at,
            interval=settings.flush_interval,
            flush_order=1,  # after the span queues, whose spans become events here
            shutdown_timeout=settings.shutdown_timeout,
            full_warning=(
                f"PostHog event queue is full (max_queue_size={settings.max_queue_size}, "
                f"max_queue_bytes={settings.max_queue_bytes}); dropping new events until it "
                "drains"
            ),
            drained_warning="PostHog event queue drained; %d events were dropped while full",
            on_thread_start=_suppress_instrumentation,
            after_fork=self._after_fork,
        )
        self._sender = BatchSender(settings, shutdown=self._queue)
        atexit.register(_call_if_alive, weakref.ref(self), "_at_exit")
        self._hook_multiprocessing()

    def _send(self, events: list[dict[str, Any]]) -> None:
        self._sender.send(events, self.backoff_base)

    def _after_fork(self) -> None:
        # The parent still owns what it had queued; the child starts empty and sends its own.
        self._sender.reset()
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
        if self._sync:
            return self._queue.run_now([event])
        return self._queue.put(event)

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued so far (and the events of spans ended so far); True when it
        was all sent or dropped in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        fed = _flush_feeders(deadline)
        return self._queue.flush(_left(deadline)) and fed

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush within ``timeout`` (default ``shutdown_timeout``), then stop the sender.

        Events that cannot be delivered within the budget are counted as dropped
        (``shutdown``, or ``unacknowledged`` when sent but not answered); events captured
        afterwards are dropped too.
        """
        budget = self._settings.shutdown_timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        fed = _flush_feeders(deadline) if not self._queue.closed else True
        delivered = self._queue.shutdown(_left(deadline))
        if not self._queue.running:
            self._sender.close()
        return delivered and fed

    def _at_exit(self) -> None:
        # Flush, but stay open: a TracerProvider whose atexit shutdown runs after ours still
        # exports spans into this client, and its exporter flushes again.
        if not self._queue.closed:
            try:
                pending = self._queue.counts().pending
                if pending and self._sender.last_attempt_error:
                    _logger.warning(
                        "posthog-otel: delivering %d queued event(s) to %s before exit "
                        "(up to %gs, shutdown_timeout)",
                        pending,
                        self._sender.url,
                        self._settings.shutdown_timeout,
                    )
                deadline = time.monotonic() + self._settings.shutdown_timeout
                _flush_feeders(deadline)
                self._queue.flush(_left(deadline))
                self._report_undelivered()
            except Exception:  # interpreter teardown: never raise
                _logger.debug("posthog-otel atexit flush failed", exc_info=True)

    def _report_undelivered(self) -> None:
        """One final line at exit when events were not delivered: how many, where, why."""
        stats = self.stats()
        reasons = dict(stats["dropped"])
        if stats["queued"]:
            reasons["still queued when shutdown_timeout ran out"] = stats["queued"]
        missing = sum(reasons.values())
        if not missing:
            return
        why = ", ".join(f"{reason}: {count}" for reason, count in sorted(reasons.items()))
        error = self._sender.last_attempt_error or stats["last_error"]
        last = f"; last error: {error}" if error else ""
        _logger.warning(
            "posthog-otel: %d of %d event(s) were not delivered to %s (%s)%s",
            missing,
            stats["captured"],
            self._sender.url,
            why,
            last,
        )

    @property
    def shutdown_timeout(self) -> float:
        return self._settings.shutdown_timeout

    @property
    def closed(self) -> bool:
        return self._queue.closed

    def stats(self) -> dict[str, Any]:
        """Counters: captured, queued, sent, batches, retries, dropped by reason, last error."""
        queue = self._queue.counts()
        sender = self._sender.counts()
        return delivery_stats(
            queue,
            sender.dropped,
            sent=sender.sent,
            batches=sender.batches,
            retries=sender.retries,
            last_error=sender.last_error,
        )


def _suppress_instrumentation() -> None:
    """The sender thread's context: uploads create no spans and carry no baggage."""
    otel_context.attach(runtime.suppressed_context())


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _flush_feeders(deadline: float | None) -> bool:
    """Flush the open span processors' queues (their spans become events in a transport);
    True when they were drained in time. Never called from their own threads' handlers."""
    complete = True
    for queue in live_queues():
        if queue.flush_order == FEEDS_EVENTS and not queue.closed:
            complete = queue.flush(_left(deadline)) and complete
    return complete


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
