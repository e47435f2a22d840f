"""Deliver what this process still holds, for shutdown paths that skip ``atexit``.

uvicorn (0.29 and later) stops a server on SIGTERM/SIGINT and then ends the process by raising
the same signal again with its default handler, so exit handlers never run and whatever the
span and event queues hold is lost. Middleware that learns of a shutdown first — ASGI lifespan
``shutdown`` — calls :func:`flush_pending` there.

    from posthog_otel.delivery.pending import flush_pending

    flush_pending()           # budget: the largest ``shutdown_timeout`` of the live clients
    flush_pending(timeout=2)  # True when every queued span and event was handled in time

Span queues are drained first (their spans become events), then every client's event queue.
Clients stay open: anything captured afterwards is still delivered by the usual means.
"""

from __future__ import annotations

import time

from .queue import live_queues

__all__ = ["flush_pending"]

_DEFAULT_BUDGET = 5.0


def flush_pending(timeout: float | None = None) -> bool:
    """Flush every open queue, span queues before event queues, within one budget."""
    queues = [queue for queue in live_queues() if not queue.closed]
    if timeout is None:
        budgets = [q.shutdown_timeout for q in queues if q.shutdown_timeout is not None]
        timeout = max(budgets, default=_DEFAULT_BUDGET)
    deadline = time.monotonic() + timeout
    complete = True
    for queue in queues:  # feeders first: their spans become events in the later queues
        complete = queue.flush(max(0.0, deadline - time.monotonic())) and complete
    return complete
