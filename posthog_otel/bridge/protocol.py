"""uvicorn's h11 protocol with a deadline for the request line and headers.

uvicorn times out idle keep-alive connections, but not a connection that is still sending its
request line and headers: one byte every few seconds keeps it open forever (slowloris). This
protocol closes a connection whose headers are not complete ``header_timeout`` seconds after
it opened or after the first bytes of a new request arrived.

Usage (``posthog_otel.bridge.server`` does this)::

    configure(header_timeout=10.0)
    uvicorn.run(app, http=HeaderDeadlineH11Protocol, ...)
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["PROTOCOL_PATH", "HeaderDeadlineH11Protocol", "configure"]

PROTOCOL_PATH = "posthog_otel.bridge.protocol:HeaderDeadlineH11Protocol"
_header_timeout = 10.0


def configure(header_timeout: float) -> None:
    """Set the deadline for every connection opened after this call."""
    global _header_timeout
    _header_timeout = header_timeout


class HeaderDeadlineH11Protocol(H11Protocol):
    """See the module docstring."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._header_timer = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._awaiting_headers():
            if self._header_timer is None:
                self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _awaiting_headers(self) -> bool:
        return bool(self.conn.their_state is h11.IDLE and not self.transport.is_closing())

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(_header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self._awaiting_headers() and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()
