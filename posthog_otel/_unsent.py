"""Where a client's events go when no API key is configured: counted, never sent.

Private to the client layer. It has the shape of :class:`posthog_otel.client.EventTransport`,
so ``Client.stats()`` reports the events as dropped for ``no_api_key``.

Usage::

    from ._unsent import UnsentTransport

    transport = UnsentTransport()
    transport.enqueue({"event": "e"})      # False: not queued
    transport.stats()["dropped"]           # {"no_api_key": 1}
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["UnsentTransport"]


class UnsentTransport:
    """Used when no API key is configured: counts events, sends nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._captured = 0

    def enqueue(self, event: dict[str, Any]) -> bool:
        with self._lock:
            self._captured += 1
        return False

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        return True

    def stats(self) -> dict[str, Any]:
        count = self._captured
        return {
            "captured": count,
            "queued": 0,
            "sent": 0,
            "batches": 0,
            "retries": 0,
            "dropped": {"no_api_key": count} if count else {},
            "dropped_total": count,
            "last_error": None,
        }
