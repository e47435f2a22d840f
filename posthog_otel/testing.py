"""In-memory capture for tests: a client whose events land in a list you can query.

Usage::

    from posthog_otel.testing import memory_client

    client, events = memory_client()
    with new_context():
        identify_context("u1")
        client.capture("signed_up")
    assert events.named("signed_up")[0]["distinct_id"] == "u1"

Events are stored exactly as they would be sent (after ``before_send``), JSON-encoded and
decoded again, so a test sees what PostHog would see.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from . import _json

if TYPE_CHECKING:
    from .client import Client

__all__ = ["CapturedEvents", "MemoryTransport", "memory_client"]


class CapturedEvents:
    """The events a :class:`MemoryTransport` received, with small query helpers."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._changed = threading.Condition()

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
    from .client import Client

    transport = MemoryTransport()
    client = Client(options.pop("api_key", "phc_test"), transport=transport, **options)
    return client, transport.events
