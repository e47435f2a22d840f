"""Delivery of posthog-otel's events through the app's posthog-python client.

When an app already has a posthog-python client, the span and exception events posthog-otel
builds go out through it: one queue, one ``before_send``, one set of delivery options.
:class:`PosthogPythonTransport` is an event transport for :class:`posthog_otel.Client`: each
finished event is handed to ``client.capture(...)`` of the posthog-python client, called in
an empty OpenTelemetry Context so posthog-python does not add the context of the code that
happened to end the span a second time.

    transport = PosthogPythonTransport(lambda: posthog.default_client or posthog.setup())
    client = Client("", transport=transport)

Events arriving while there is no posthog-python client are dropped and counted
(``no_posthog_python_client``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from posthog_otel.context import call_in_context, runtime

__all__ = ["PosthogPythonTransport"]

_logger = logging.getLogger("posthog.otel")


def _timestamp(value: Any) -> Any:
    """posthog-python takes a datetime; ours is epoch seconds or ISO text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return value


class PosthogPythonTransport:
    """Hands events to a posthog-python client; see the module docstring."""

    def __init__(self, client_getter: Callable[[], Any]) -> None:
        self._get = client_getter
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {"captured": 0, "forwarded": 0}
        self._dropped: dict[str, int] = {}

    def _drop(self, reason: str) -> bool:
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + 1
        return False

    def enqueue(self, event: dict[str, Any]) -> bool:
        with self._lock:
            self._counts["captured"] += 1
        try:
            client = self._get()
        except Exception:
            _logger.debug("posthog-otel could not find the posthog-python client", exc_info=True)
            client = None
        if client is None:
            return self._drop("no_posthog_python_client")
        try:
            call_in_context(
                runtime.suppressed_context(),
                client.capture,
                event["event"],
                distinct_id=event.get("distinct_id"),
                properties=event.get("properties") or {},
                timestamp=_timestamp(event.get("timestamp")),
                uuid=event.get("uuid"),
            )
        except Exception:
            _logger.warning("posthog-python could not take an event", exc_info=True)
            return self._drop("posthog_python_error")
        with self._lock:
            self._counts["forwarded"] += 1
        return True

    def flush(self, timeout: float | None = None) -> bool:
        client = self._get()
        if client is None:
            return True
        try:
            client.flush()
        except Exception:
            _logger.debug("posthog-python could not flush", exc_info=True)
            return False
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flushes only: the posthog-python client belongs to the app."""
        return self.flush(timeout)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {**self._counts, "dropped": dict(self._dropped)}
