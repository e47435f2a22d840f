"""The package's one bounded queue: drained in batches by a daemon thread, never blocking.

The span processor (spans to turn into events) and the transport (events to post) both use
:class:`WorkQueue`; it owns everything about queueing and the thread, nothing about the items:

* :meth:`~WorkQueue.put` never blocks. A full queue drops the item and counts it, with one
  warning per burst of drops (and, if asked, one more saying how many were lost once it drains).
  Full means ``max_size`` items, or (given ``max_bytes`` and ``size_of``) the item would take
  the bytes held (queued, or taken by the thread and not yet finished) over ``max_bytes``.
* The thread starts with the first item. It wakes when ``batch_size`` items wait or every
  ``interval`` seconds; a partial batch waits for the interval unless a flush or shutdown
  wants it.
* :meth:`~WorkQueue.flush` waits only for items accepted before it was called, within its budget.
* :meth:`~WorkQueue.shutdown` refuses new items, drains until its deadline, stops the thread
  and discards (and counts) what is still queued.
* After ``os.fork()`` the child starts with an empty queue, fresh counters and no thread; the
  parent keeps and delivers what it had.
* Every queue registers itself, so shutdown paths that skip ``atexit`` can flush them all
  (:func:`live_queues`, used by :mod:`posthog_otel.delivery.pending`).

Usage::

    queue = WorkQueue("posthog-otel-spans", handle_batch, max_size=2048)
    queue = WorkQueue("events", send, max_size=10_000, max_bytes=64 << 20, size_of=len)
    queue.put(item)             # False (and counted) when full or shut down
    queue.flush(timeout=5)      # True when everything put so far was handled in time
    queue.shutdown(timeout=5)   # True when nothing was left behind
    queue.counts().dropped      # items refused because the queue was full
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["FEEDS_EVENTS", "QueueCounts", "WorkQueue", "live_queues"]

_T = TypeVar("_T")
_logger = logging.getLogger("posthog.otel")
_live: weakref.WeakSet[WorkQueue[Any]] = weakref.WeakSet()
_POLL = 0.05  # flush re-wakes the thread this often, and a join gets this much slack
#: ``flush_order`` of the queues whose items become a client's events (span processors'): a
#: client's flush, shutdown and exit flush flush them first, and so does ``flush_pending``
FEEDS_EVENTS = -1


def live_queues() -> list[WorkQueue[Any]]:
    """Every queue of this process not yet garbage-collected, those that feed others first."""
    return sorted(_live, key=lambda queue: queue.flush_order)


@dataclass(frozen=True)
class QueueCounts:
    """One consistent reading of a queue's counters (all since start, or since fork)."""

    accepted: int  #: put into the queue
    direct: int  #: handled on the caller's thread by :meth:`WorkQueue.run_now`
    dropped: int  #: refused because the queue was full
    refused: int  #: refused because the queue was shut down
    discarded: int  #: still queued when shutdown gave up on them
    pending: int  #: queued, or taken by the thread and not yet finished
    pending_bytes: int = 0  #: the ``size_of`` of the pending items (0 without ``max_bytes``)

    @property
    def offered(self) -> int:
        """Every item ever handed to the queue, whatever became of it."""
        return self.accepted + self.direct + self.dropped + self.refused


class WorkQueue(Generic[_T]):
    """See the module docstring.

    ``handler`` gets lists of at most ``batch_size`` items on the queue's thread; an exception
    from it is logged and the batch counts as handled. ``interval=None`` means a partial batch
    never waits (use it with ``batch_size=1``). ``flush_order`` orders :func:`live_queues`
    (queues feeding others go first); ``shutdown_timeout`` is the budget a shutdown path should
    give this queue. ``full_warning`` is logged at the first drop of a burst, ``drained_warning``
    (``%d`` = items lost) when the queue drains after one. ``on_thread_start`` runs first on the
    new thread; ``after_fork`` runs in a forked child after the queue reset itself.
    ``max_bytes`` bounds the sum of ``size_of(item)`` over the items held; ``size_of`` runs on
    the caller's thread, outside the lock, and an exception from it counts the item as 0.
    """

    def __init__(
        self,
        name: str,
        handler: Callable[[list[_T]], None],
        *,
        max_size: int,
        batch_size: int = 1,
        interval: float | None = None,
        flush_order: int = 0,
        shutdown_timeout: float | None = None,
        full_warning: str | None = None,
        drained_warning: str | None = None,
        on_thread_start: Callable[[], None] | None = None,
        after_fork: Callable[[], None] | None = None,
        max_bytes: int | None = None,
        size_of: Callable[[_T], int] | None = None,
    ) -> None:
        if max_size < 1 or batch_size < 1:
            raise ValueError("max_size and batch_size must be at least 1")
        if max_bytes is not None and (max_bytes < 1 or size_of is None):
            raise ValueError("max_bytes must be at least 1 and needs size_of")
        self._max_bytes = max_bytes
        self._size_of = size_of if max_bytes is not None else None
        self.name = name
        self.flush_order = flush_order
        self.shutdown_timeout = shutdown_timeout
        self._handler = handler
        self._max_size = max_size
        self._batch_size = batch_size
        self._interval = interval
        self._full_warning = full_warning or f"{name} queue is full ({max_size}); dropping"
        self._drained_warning = drained_warning
        self._on_thread_start = on_thread_start
        self._after_fork = after_fork
        self._closed = False
        self._reset()
        _live.add(self)
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)

            def in_child() -> None:
                queue = ref()
                if queue is not None:
                    queue._forked()

            os.register_at_fork(after_in_child=in_child)

    def _forked(self) -> None:
        self._reset()
        if self._after_fork is not None:
            self._after_fork()

    def _reset(self) -> None:
        """Fresh state: at construction, and in a forked child (whose locks may be held)."""
        self._items: deque[_T] = deque()
        self._sizes: deque[int] = deque()  # size_of each queued item (with max_bytes only)
        self._bytes = 0  # queued + in flight, with max_bytes only
        self._lock = threading.Lock()  # guards the counters and the queue's bound
        self._progress = threading.Condition(self._lock)  # notified as batches finish
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._deadline: float | None = None
        self._accepted = 0
        self._direct = 0
        self._dropped = 0
        self._refused = 0
        self._discarded = 0
        self._processed = 0  # accepted items finished (handled or discarded)
        self._in_flight = 0  # taken off the queue, not yet finished
        self._flush_until = 0  # a flush wants every item accepted before this count now
        self._burst = 0  # drops since the queue last drained

    # -- caller side ----------------------------------------------------------------------

    def put(self, item: _T) -> bool:
        """Queue ``item``; False when it was refused (full: counted and warned; shut down)."""
        size = self._measure(item)
        with self._lock:
            if self._closed:
                self._refused += 1
                return False
            full = len(self._items) >= self._max_size
            if size is not None and not full:
                assert self._max_bytes is not None
                full = self._bytes + size > self._max_bytes
            if full:
                self._dropped += 1
                self._burst += 1
                first_drop = self._burst == 1
            else:
                self._items.append(item)
                self._accepted += 1
                if size is not None:
                    self._sizes.append(size)
                    self._bytes += size
        if full:
            if first_drop:
                _logger.warning(self._full_warning)
            return False
        if self._thread is None:
            self._start()
        if len(self._items) >= self._batch_size and not self._wake.is_set():
            self._wake.set()
        return True

    def _measure(self, item: _T) -> int | None:
        """``size_of(item)`` when the queue is bounded in bytes (an error counts as 0)."""
        size_of = self._size_of
        if size_of is None:
            return None
        try:
            return max(0, int(size_of(item)))
        except Exception:
            _logger.debug("%s could not size an item", self.name, exc_info=True)
            return 0

    def run_now(self, batch: list[_T]) -> bool:
        """Handle ``batch`` on the caller's thread (synchronous mode); False once shut down."""
        with self._lock:
            if self._closed:
                self._refused += len(batch)
                return False
            self._direct += len(batch)
            self._in_flight += len(batch)
        self._handle(batch, direct=True)
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every item accepted before this call is handled; False at ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._progress:
            target = self._accepted
            thread = self._thread
            if thread is None or thread is threading.current_thread():
                return self._processed >= target
            self._flush_until = max(self._flush_until, target)
            while self._processed < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._wake.set()
                self._progress.wait(_POLL if remaining is None else min(remaining, _POLL))
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        """Refuse new items, drain within ``timeout``, stop the thread, discard the rest.

        True when everything accepted was handled and nothing is still being handled. A batch
        the thread took stays the handler's to finish: counting it here as well would count it
        twice. The handler should keep to :attr:`deadline`.
        """
        with self._lock:
            self._closed = True
            self._deadline = None if timeout is None else time.monotonic() + timeout
        handled = self.flush(timeout)
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            deadline = self._deadline
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()) + _POLL)
        with self._progress:
            leftover = len(self._items)
            self._items.clear()
            self._bytes -= sum(self._sizes)
            self._sizes.clear()
            self._discarded += leftover
            self._processed += leftover
            self._progress.notify_all()
            in_flight = self._in_flight
        return handled and not leftover and not in_flight

    # -- state ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def deadline(self) -> float | None:
        """When shutdown's budget runs out (``time.monotonic()``); None before shutdown."""
        return self._deadline

    def wait_for_stop(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return True at once when shutdown begins."""
        return self._stop.wait(seconds)

    def counts(self) -> QueueCounts:
        with self._lock:
            return QueueCounts(
                accepted=self._accepted,
                direct=self._direct,
                dropped=self._dropped,
                refused=self._refused,
                discarded=self._discarded,
                pending=len(self._items) + self._in_flight,
                pending_bytes=self._bytes,
            )

    # -- the thread -----------------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        if self._on_thread_start is not None:
            self._on_thread_start()
        while True:
            interval_elapsed = not self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._drain(interval_elapsed)
            except Exception:  # a bug here must not stop the queue for good
                _logger.exception("%s failed; continuing", self.name)
            if self._stop.is_set() and (not self._items or self._past_deadline()):
                return

    def _past_deadline(self) -> bool:
        deadline = self._deadline
        return deadline is not None and time.monotonic() >= deadline

    def _drain(self, interval_elapsed: bool) -> None:
        items = self._items
        size = self._batch_size
        while items:
            if self._past_deadline():
                return  # shutdown discards what is left
            if (
                len(items) < size
                and not interval_elapsed
                and not self._stop.is_set()
                and self._processed + self._in_flight >= self._flush_until
            ):
                break  # a partial batch waits for the interval, a flush or shutdown
            batch, held = self._take(size)
            if batch:
                self._handle(batch, size=held)
        if self._burst:
            with self._lock:
                lost, self._burst = self._burst, 0
            if self._drained_warning is not None:
                _logger.warning(self._drained_warning, lost)

    def _take(self, limit: int) -> tuple[list[_T], int]:
        """Up to ``limit`` items off the queue, and their bytes (still held until handled)."""
        items = self._items
        sizes = self._sizes
        with self._lock:
            taken = min(limit, len(items))
            batch = [items.popleft() for _ in range(taken)]
            size = sum(sizes.popleft() for _ in range(min(taken, len(sizes))))
            self._in_flight += len(batch)
        return batch, size

    def _handle(self, batch: list[_T], direct: bool = False, size: int = 0) -> None:
        try:
            self._handler(batch)
        except Exception:
            _logger.warning(
                "%s failed on a batch of %d; continuing", self.name, len(batch), exc_info=True
            )
        finally:
            with self._progress:
                self._in_flight -= len(batch)
                self._bytes -= size
                if not direct:
                    self._processed += len(batch)
                    self._progress.notify_all()
