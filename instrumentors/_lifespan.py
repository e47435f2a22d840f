"""ASGI lifespan: deliver queued spans and events before the server lets the process end.

uvicorn (0.29 and later) ends its process by raising the stop signal again once the server
has stopped, so ``atexit`` never runs; lifespan ``shutdown`` is the last moment an app hears
of. Both helpers never raise into the server.

    await flush_off_loop()                  # in a lifespan shutdown handler
    await answer_lifespan(receive, send)    # for an app that does not speak lifespan itself
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from posthog_otel.delivery.pending import flush_pending

__all__ = ["answer_lifespan", "flush_off_loop"]

_logger = logging.getLogger("posthog.otel")

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def flush_off_loop() -> None:
    """Run :func:`flush_pending` in the loop's executor (inline when not under asyncio)."""
    try:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio: at shutdown a short blocking flush is harmless
            flush_pending()
            return
        await loop.run_in_executor(None, flush_pending)
    except Exception:
        _logger.warning("posthog-otel could not flush at lifespan shutdown", exc_info=True)


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Speak the lifespan protocol for an app without it: start at once, flush at shutdown."""
    while True:
        message = await receive()
        kind = message.get("type")
        if kind == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif kind == "lifespan.shutdown":
            await flush_off_loop()
            await send({"type": "lifespan.shutdown.complete"})
            return
