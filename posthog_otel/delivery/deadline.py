"""A whole-request deadline for the sender's HTTP posts, and whether the body was sent.

``requests``' ``timeout`` bounds each socket operation, not the request: a server that sends
one byte every half second holds a post for as long as it likes. :class:`DeadlineSession` is a
``requests.Session`` whose connections report themselves while a post runs; a watchdog thread
shuts the socket down when the post's deadline passes (or a shutdown's, read while it runs),
which ends any blocked read at once. :class:`Watch` also tells whether the request body was
fully written before the answer went missing (PostHog may then have ingested the batch).

Usage::

    session = DeadlineSession()
    with Watch(deadline=lambda: time.monotonic() + 15) as watch:
        session.post(url, data=body, timeout=15)      # ends by the deadline, whatever the server
    watch.aborted, watch.body_sent

Posts through a proxy are bounded by ``timeout`` per operation only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import requests.adapters
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["DeadlineSession", "Watch"]

_POLL = 0.02
_tracking = threading.local()


class Watch:
    """The watchdog of one post on this thread. ``deadline()`` gives the monotonic time the
    post must end by (None: no limit now); it is re-read while the post runs."""

    def __init__(self, deadline: Callable[[], float | None]) -> None:
        self._deadline = deadline
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._connection: Any = None
        self.aborted = False
        self.body_sent = False
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Watch:
        _tracking.watch = self
        self._thread = threading.Thread(target=self._run, name="posthog-otel-deadline", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        _tracking.watch = None
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def started(self, connection: Any) -> None:
        with self._lock:
            self._connection = connection
            self.body_sent = False

    def sent(self) -> None:
        self.body_sent = True

    def _run(self) -> None:
        while not self._done.wait(_POLL):
            deadline = self._deadline()
            if deadline is not None and time.monotonic() >= deadline:
                self._abort()
                return

    def _abort(self) -> None:
        with self._lock:
            self.aborted = True
            sock = getattr(self._connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked read or write at once


def _watch() -> Watch | None:
    return getattr(_tracking, "watch", None)


class _WatchedHTTPConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> Any:
        watch = _watch()
        if watch is not None:
            watch.started(self)
        result = super().request(*args, **kwargs)
        if watch is not None:
            watch.sent()
        return result


class _WatchedHTTPSConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> Any:
        watch = _watch()
        if watch is not None:
            watch.started(self)
        result = super().request(*args, **kwargs)
        if watch is not None:
            watch.sent()
        return result


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


class DeadlineSession(requests.Session):
    """A ``requests.Session`` whose direct connections report to the current :class:`Watch`."""

    def __init__(self) -> None:
        super().__init__()
        self.mount("http://", _WatchedAdapter())
        self.mount("https://", _WatchedAdapter())
