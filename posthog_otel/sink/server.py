"""The sink as an object: start it (foreground or a thread), stop it, and query what it stored.

It is a ``ThreadingHTTPServer`` (standard library only) bound to 127.0.0.1 by default; the
routes are in :mod:`.handler`, the storage in :mod:`.store`.

Usage::

    with SinkServer(port=0, db_path="events.sqlite3") as sink:   # a free port, in a thread
        client = sink.client()
        client.capture("signed_up", distinct_id="u1")
        client.flush()
        sink.wait_for(1, event="signed_up")

    SinkServer(port=8010).serve_forever()                          # in the foreground
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from .handler import SinkHandler, SinkHTTPServer
from .hosts import HostGuard
from .records import STATUS_ACCEPTED, STATUS_REJECTED
from .store import EventFilter, EventStore

__all__ = ["DEFAULT_DB", "DEFAULT_PORT", "SinkServer"]

DEFAULT_PORT = 8010
DEFAULT_DB = "posthog-sink.sqlite3"


class SinkServer:
    """A running (or ready to run) sink: its address, its store and query helpers for tests."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        db_path: str | os.PathLike[str] = DEFAULT_DB,
        *,
        api_key: str = "phc_sink_test",
        allow_hosts: Sequence[str] = (),
    ) -> None:
        self.guard = HostGuard(host, allow_hosts)
        self.store = EventStore(db_path)
        self.api_key = api_key
        try:
            self._httpd = SinkHTTPServer((host, port), SinkHandler)
        except OSError:
            self.store.close()
            raise
        self._httpd.sink = self
        self._httpd.daemon_threads = True
        self.host = host
        self.port = int(self._httpd.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        self._thread: threading.Thread | None = None
        self._arrived = threading.Condition()

    # -- running --------------------------------------------------------------------------

    def start(self) -> SinkServer:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="posthog-otel-sink",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` is called from another one (or Ctrl-C)."""
        self._httpd.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop serving, close the socket and the database."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()
        self.store.close()

    def __enter__(self) -> SinkServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests and scripts ----------------------------------------------------

    def events(
        self,
        event: str | None = None,
        *,
        distinct_id: str | None = None,
        session_id: str | None = None,
        trace_id: str | None = None,
        kind: str | None = None,
        status: str | None = STATUS_ACCEPTED,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Stored rows as ``GET /api/events`` shows them, **oldest first** (accepted only by
        default; ``status=None`` for all, ``"rejected"`` for refused ones)."""
        where = EventFilter(
            event=event,
            distinct_id=distinct_id,
            session_id=session_id,
            trace_id=trace_id,
            kind=kind,
            status=status,
            limit=limit,
        )
        return [row.to_json() for row in reversed(self.store.query(where))]

    def rejected(self, **filters: Any) -> list[dict[str, Any]]:
        """Refused rows, oldest first."""
        return self.events(status=STATUS_REJECTED, **filters)

    def wait_for(self, count: int, timeout: float = 10.0, **filters: Any) -> list[dict[str, Any]]:
        """Wait until at least ``count`` rows match ``filters`` (as :meth:`events`)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = self.events(**filters)
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} sink events matching {filters or 'anything'}, "
                        f"got {len(found)}"
                    )
                self._arrived.wait(min(remaining, 0.25))

    def clear(self) -> int:
        return self.store.clear()

    def client(self, **options: Any) -> Any:
        """A :class:`posthog_otel.Client` that sends here (small batches, short interval)."""
        from ..client import Client

        options.setdefault("flush_interval", 0.05)
        options.setdefault("max_retries", 0)
        return Client(options.pop("api_key", self.api_key), host=self.url, **options)

    def notify(self) -> None:
        """Wake threads waiting in :meth:`wait_for` (called when events arrive)."""
        with self._arrived:
            self._arrived.notify_all()
