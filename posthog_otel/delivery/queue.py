"""A bounded queue drained by one daemon thread; drops are counted, flush keeps its budget.

Keeps slow work (mapping spans to events) off the threads that end spans.

    worker = BackgroundWorker("posthog-otel-spans", handle_item, max_size=2048)
    worker.put(item)          # False (and counted) when full; never blocks
    worker.flush(timeout=5)   # True when everything put so far was handled
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

_T = TypeVar("_T")
_logger = logging.getLogger("posthog_otel")
_live: weakref.WeakSet[BackgroundWorker[Any]] = weakref.WeakSet()


def live_workers() -> list[BackgroundWorker[Any]]:
    """Every worker of this process that has not been garbage-collected."""
    return list(_live)


class Counter:
    """A counter safe to increment from many threads without a lock (itertools.count)."""

    __slots__ = ("_count",)

    def __init__(self) -> None:
        self._count = itertools.count()

    def increment(self) -> None:
        next(self._count)

    @property
    def value(self) -> int:
        # repr is "count(N)": reading it does not advance the counter.
        return int(repr(self._count)[6:-1])


class BackgroundWorker(Generic[_T]):
    def __init__(self, name: str, handler: Callable[[_T], None], max_size: int) -> None:
        self._name = name
        self._handler = handler
        self._max_size = max_size
        self._reset()
        _live.add(self)
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)

            def after_fork() -> None:
                worker = ref()
                if worker is not None:
                    worker._reset()

            os.register_at_fork(after_in_child=after_fork)

    def _reset(self) -> None:
        self._items: deque[_T] = deque()
        self._wake = threading.Event()
        self._done = threading.Condition(threading.Lock())
        self._put = Counter()
        self._dropped = Counter()
        self._handled = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._warned = False

    @property
    def dropped(self) -> int:
        return self._dropped.value

    def put(self, item: _T) -> bool:
        if self._closed:
            return False
        if len(self._items) >= self._max_size:
            self._dropped.increment()
            if not self._warned:
                self._warned = True
                _logger.warning("%s queue is full (%d); dropping", self._name, self._max_size)
            return False
        self._items.append(item)
        self._put.increment()
        if self._thread is None:
            self._start()
        self._wake.set()
        return True

    def _start(self) -> None:
        with self._done:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        items = self._items
        while True:
            self._wake.wait()
            self._wake.clear()
            while items:
                item = items.popleft()
                try:
                    self._handler(item)
                except Exception:
                    _logger.warning("%s failed on an item", self._name, exc_info=True)
                with self._done:
                    self._handled += 1
                    self._done.notify_all()
            self._warned = False
            if self._closed:
                return

    def flush(self, timeout: float | None = None) -> bool:
        target = self._put.value
        if self._thread is None or self._thread is threading.current_thread():
            return self._handled >= target
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done:
            while self._handled < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._done.wait(remaining)
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        flushed = self.flush(timeout)
        self._closed = True
        self._wake.set()
        return flushed
