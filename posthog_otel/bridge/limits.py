"""Request bodies within bounds: a size cap after decompression, and a per-process memory budget.

Bodies are decompressed as they arrive, never past the cap: a gzip bomb costs at most
``cap`` bytes of output before it is refused (413), whatever its ratio.

Usage::

    inflater = Inflater.for_encoding("gzip", cap=64 * 1024 * 1024)   # None: unsupported
    inflater.feed(chunk)           # BodyTooLarge / BadBody as soon as it is known
    body = inflater.finish()       # BadBody when the stream is truncated

    budget = MemoryBudget(128 * 1024 * 1024)       # one peer: at most half of it
    if not budget.reserve(ticket, len(chunk), peer="10.0.0.7"):   # over budget: refuse
        ...answer 503...
    budget.release(ticket)
"""

from __future__ import annotations

import zlib
from typing import Any

__all__ = ["SUPPORTED_ENCODINGS", "BadBody", "BodyTooLarge", "Inflater", "MemoryBudget"]

SUPPORTED_ENCODINGS = ("identity", "gzip", "x-gzip", "deflate")


class BodyTooLarge(Exception):
    """The body is over the cap (answer 413)."""


class BadBody(ValueError):
    """The body's compression is corrupt or truncated (answer 400)."""


class Inflater:
    """Collects a request body, decompressing on the fly, refusing it once over ``cap``."""

    def __init__(self, mode: str, cap: int) -> None:
        self._mode = mode  # "identity", "gzip" or "deflate"
        self._cap = cap
        self._raw_cap = cap + cap // 64 + 65536  # compressed input a cap-sized body may need
        self._raw = 0
        self._out = bytearray()
        self._inflater: Any = None
        if mode == "gzip":
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    @classmethod
    def for_encoding(cls, encoding: str | None, cap: int) -> Inflater | None:
        """An inflater for a ``Content-Encoding`` value; None when it is not supported."""
        name = (encoding or "identity").strip().lower() or "identity"
        if name in ("identity",):
            return cls("identity", cap)
        if name in ("gzip", "x-gzip"):
            return cls("gzip", cap)
        if name == "deflate":
            return cls("deflate", cap)
        return None

    @property
    def size(self) -> int:
        """Bytes of (decompressed) body so far."""
        return len(self._out)

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self._raw += len(data)
        if self._raw > self._raw_cap:
            raise BodyTooLarge
        if self._mode == "identity":
            if len(self._out) + len(data) > self._cap:
                raise BodyTooLarge
            self._out += data
            return
        if self._inflater is None:  # deflate: zlib-wrapped (RFC 1950) or raw (RFC 1951)
            self._inflater = zlib.decompressobj(
                zlib.MAX_WBITS if _looks_like_zlib(data) else -zlib.MAX_WBITS
            )
        self._inflate(data)

    def _inflate(self, data: bytes) -> None:
        inflater = self._inflater
        while data:
            if inflater.eof:
                if self._mode != "gzip":
                    raise BadBody("data after the end of the deflate stream")
                inflater = self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # next member
            room = self._cap - len(self._out)
            try:
                out = inflater.decompress(data, room + 1)
            except zlib.error as exc:
                raise BadBody(f"body is not valid {self._mode} data: {exc}") from None
            if len(out) > room:
                raise BodyTooLarge
            self._out += out
            data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail

    def finish(self) -> bytearray:
        """The whole body; :class:`BadBody` when a compressed stream ended early."""
        if self._mode != "identity" and self._raw and not self._inflater.eof:
            raise BadBody(f"body is truncated {self._mode} data")
        return self._out


def _looks_like_zlib(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class MemoryBudget:
    """Bytes of request bodies held at once in this process. A request may always hold
    memory when it is the only one; otherwise it must fit in what is left.

    Given a ``peer`` (the client's address), one peer may hold at most ``peer_limit`` bytes
    (default: half the budget) across its requests, so one client cannot take the whole pool.
    """

    def __init__(self, limit: int, peer_limit: int | None = None) -> None:
        self.limit = limit
        self.peer_limit = limit // 2 if peer_limit is None else peer_limit
        self._held: dict[int, int] = {}
        self._peer_of: dict[int, str] = {}
        self._by_peer: dict[str, int] = {}
        self._total = 0

    @property
    def held(self) -> int:
        return self._total

    def reserve(self, ticket: int, size: int, peer: str | None = None) -> bool:
        """Raise ``ticket``'s holding to ``size``; False when that would break the budget."""
        current = self._held.get(ticket, 0)
        if size <= current:
            return True
        others = self._total - current
        if others + size > self.limit and others > 0:
            return False
        if peer is not None:
            peer_others = self._by_peer.get(peer, 0) - current
            if peer_others + size > self.peer_limit and peer_others > 0:
                return False
            self._peer_of[ticket] = peer
            self._by_peer[peer] = peer_others + size
        self._held[ticket] = size
        self._total += size - current
        return True

    def release(self, ticket: int) -> None:
        size = self._held.pop(ticket, 0)
        self._total -= size
        peer = self._peer_of.pop(ticket, None)
        if peer is not None:
            left = self._by_peer.get(peer, 0) - size
            if left > 0:
                self._by_peer[peer] = left
            else:
                self._by_peer.pop(peer, None)
