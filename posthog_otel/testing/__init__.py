"""In-memory capture for tests, and a pytest plugin with ``posthog_events`` and ``posthog_sink``.

Usage without pytest::

    from posthog_otel.testing import memory_client

    client, events = memory_client()
    with new_context():
        identify_context("u1")
        client.capture("signed_up")
    assert events.named("signed_up")[0]["distinct_id"] == "u1"

Events are stored exactly as they would be sent (after ``before_send``), JSON-encoded and
decoded again, so a test sees what PostHog would see.

With pytest, installing posthog-otel registers a plugin (entry point ``pytest11``) with two
fixtures:

* ``posthog_events``: an isolated in-memory client, installed as the default client for the
  test (so ``posthog_otel.capture(...)``, contexts and instrumentation deliver to it) and the
  previous default restored afterwards. It is the :class:`CapturedEvents`, with the client as
  ``posthog_events.client``::

      def test_signup(posthog_events):
          signup("ada@example.com")
          (event,) = posthog_events.named("signed_up")
          assert posthog_events.for_person("ada@example.com") == [event]

* ``posthog_sink``: a real sink (:class:`posthog_otel.sink.SinkServer`) on a free port of
  127.0.0.1 with a temporary database, stopped after the test. ``.url`` to send to,
  ``.client()`` for a client pointed at it, ``.events(...)`` / ``.wait_for(n, ...)`` to query::

      def test_delivery(posthog_sink):
          client = posthog_sink.client()
          client.capture("signed_up", distinct_id="u1")
          client.flush(5)
          assert posthog_sink.events("signed_up")[0]["distinct_id"] == "u1"

This module does not import pytest: the fixtures are registered from the ``pytest_configure``
hook, which only pytest calls, so ``import posthog_otel.testing`` stays cheap and works without
pytest installed.

May import the core layers (the client, delivery) and the sink; :mod:`.capture_server` is a
minimal loopback ``/batch/`` server with scriptable faults.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..delivery import encoding as _json

if TYPE_CHECKING:
    from ..client import Client
    from ..sink import SinkServer

__all__ = ["CapturedEvents", "MemoryTransport", "memory_client", "pytest_configure"]


class CapturedEvents:
    """The events a :class:`MemoryTransport` received, with small query helpers."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self.client: Client | None = None  # set by memory_client() and the fixture

    def _add(self, event: dict[str, Any]) -> None:
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Any:
        return iter(list(self._events))

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._events[index]

    @property
    def all(self) -> list[dict[str, Any]]:
        return list(self._events)

    def named(self, name: str) -> list[dict[str, Any]]:
        """Events whose name is ``name`` (e.g. ``"$exception"``)."""
        return [e for e in self._events if e["event"] == name]

    def for_person(self, distinct_id: str) -> list[dict[str, Any]]:
        """Events whose distinct id is ``distinct_id``."""
        return [e for e in self._events if e["distinct_id"] == distinct_id]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` events arrived; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._events) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} PostHog events, got {len(self._events)}"
                    )
                self._changed.wait(remaining)
            return list(self._events)

    def clear(self) -> None:
        with self._changed:
            self._events.clear()


class MemoryTransport:
    """An :class:`~posthog_otel.client.EventTransport` that keeps events in memory."""

    def __init__(self) -> None:
        self.events = CapturedEvents()
        self._lock = threading.Lock()
        self._captured = 0

    def enqueue(self, event: dict[str, Any]) -> bool:
        with self._lock:
            self._captured += 1
        self.events._add(json.loads(_json.dumps_event(dict(event))))
        return True

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        return True

    def stats(self) -> dict[str, Any]:
        return {
            "captured": self._captured,
            "queued": 0,
            "sent": len(self.events),
            "batches": 0,
            "retries": 0,
            "dropped": {},
            "dropped_total": 0,
            "last_error": None,
        }


def memory_client(**options: Any) -> tuple[Client, CapturedEvents]:
    """A client (options as :class:`~posthog_otel.Client`) whose events land in memory."""
    from ..client import Client

    transport = MemoryTransport()
    client = Client(options.pop("api_key", "phc_test"), transport=transport, **options)
    transport.events.client = client
    return client, transport.events


# --------------------------------------------------------------------------- pytest plugin

_FIXTURES_PLUGIN = "posthog_otel.testing.fixtures"


def pytest_configure(config: Any) -> None:
    """pytest hook: register the fixtures (pytest is imported only here, by pytest itself)."""
    manager = config.pluginmanager
    if not manager.has_plugin(_FIXTURES_PLUGIN):
        manager.register(_fixtures_plugin(), _FIXTURES_PLUGIN)


def _fixtures_plugin() -> object:
    import pytest

    from .. import global_client

    class _PosthogFixtures:
        """The fixtures, as a plugin object (see the module docstring)."""

        @pytest.fixture
        def posthog_events(self) -> Iterator[CapturedEvents]:
            client, events = memory_client()
            previous = global_client.set_client(client)
            try:
                yield events
            finally:
                global_client.set_client(previous)
                client.shutdown(0)

        @pytest.fixture
        def posthog_sink(self, tmp_path: Path) -> Iterator[SinkServer]:
            from ..sink import SinkServer

            with SinkServer(port=0, db_path=tmp_path / "posthog-sink.sqlite3") as sink:
                yield sink

    return _PosthogFixtures()
