"""Where a client's events go when they cannot be sent: counted, never sent.

Private to the client layer. It has the shape of :class:`posthog_otel.client.EventTransport`,
so ``Client.stats()`` reports the events as dropped for ``no_api_key`` (no API key configured)
or another ``reason`` (``invalid_config``: the default client's configuration was invalid).

Usage::

    from ._unsent import UnsentTransport

    transport = UnsentTransport()
    transport.enqueue({"event": "e"})      # False: not queued
    transport.stats()["dropped"]           # {"no_api_key": 1}
    UnsentTransport("invalid_config")      # counted under that reason instead
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["UnsentTransport"]


class UnsentTransport:
    """Used when events cannot be sent: counts them under ``reason``, sends nothing."""

    def __init__(self, reason: str = "no_api_key") -> None:
        self._lock = threading.Lock()
        self._captured = 0
        self.reason = reason

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
            "dropped": {self.reason: count} if count else {},
            "dropped_total": count,
            "last_error": None,
        }
