"""What the event transport and the OTLP exports share about accounting: stats and warnings.

:func:`delivery_stats` is the one shape of ``stats()`` for a queue plus whatever posts its
batches: the queue's own drops are added to the poster's as ``queue_full`` (refused while
full) and ``shutdown`` (refused or discarded by a shutdown). :class:`WarnOnce` logs the first
warning of each kind at WARNING and its repeats at DEBUG, so an outage warns once, not per batch.

Usage::

    warn_once = WarnOnce(logging.getLogger("posthog.otel"))
    warn_once("network", "PostHog is unreachable at %s", url)   # WARNING
    warn_once("network", "PostHog is unreachable at %s", url)   # DEBUG
    delivery_stats(queue.counts(), dropped, sent=3, batches=1, retries=0, last_error=None)
"""

from __future__ import annotations

import logging
from typing import Any

from .queue import QueueCounts

__all__ = ["WarnOnce", "delivery_stats"]


def delivery_stats(
    queue: QueueCounts,
    dropped: dict[str, int],
    *,
    sent: int,
    batches: int,
    retries: int,
    last_error: str | None,
    requests: int | None = None,
) -> dict[str, Any]:
    """Counters: captured, queued, sent, batches, (requests,) retries, dropped by reason, last
    error. ``dropped`` (the poster's own drops, a copy) gains the queue's drops."""
    for reason, count in (
        ("queue_full", queue.dropped),
        ("shutdown", queue.refused + queue.discarded),
    ):
        if count:
            dropped[reason] = dropped.get(reason, 0) + count
    stats: dict[str, Any] = {
        "captured": queue.offered,
        "queued": queue.pending,
        "queued_bytes": queue.pending_bytes,
        "sent": sent,
        "batches": batches,
    }
    if requests is not None:
        stats["requests"] = requests
    stats["retries"] = retries
    stats["dropped"] = dropped
    stats["dropped_total"] = sum(dropped.values())
    stats["last_error"] = last_error
    return stats


class WarnOnce:
    """Log each ``key``'s first message at WARNING, later ones at DEBUG (see the module)."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._warned: set[str] = set()

    def __call__(self, key: str, message: str, *args: Any) -> None:
        if key in self._warned:
            self._logger.debug(message, *args)
            return
        self._warned.add(key)
        self._logger.warning(message, *args)
