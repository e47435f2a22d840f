"""Which ``Host`` and ``Origin`` values the sink answers: a defence against DNS rebinding.

A web page can point a name it controls at 127.0.0.1 and then read (and clear) the sink's
events through that name: the browser treats it as the page's own origin. The sink answers
only requests whose ``Host`` names the bound address, ``localhost`` (or ``*.localhost``), an
IP address when bound to every interface, or a name given with ``--allow-host``; everything
else gets 403. Requests that change state beyond capturing (``DELETE``) must also come from no
``Origin`` or from an origin whose host passes the same test.

Usage::

    guard = HostGuard("127.0.0.1", allowed=["sink.dev.internal"])
    guard.allows_host("127.0.0.1:8010")            # True
    guard.allows_host("attacker.example:8010")     # False
    guard.allows_origin("http://localhost:8010")   # True
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["HostGuard"]

_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def _name(host: str) -> str:
    """``host`` without a port, brackets or trailing dot, lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host[:-1] if host.endswith(".") else host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HostGuard:
    """See the module docstring. ``bound`` is the address the sink listens on."""

    def __init__(self, bound: str, allowed: Iterable[str] = ()) -> None:
        self.bound = _name(bound)
        self.allowed = frozenset(_name(name) for name in allowed if name.strip())

    def allows_host(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header is answered (no header: no)."""
        if not header:
            return False
        host = _name(header)
        if not host:
            return False
        if host == self.bound or host in self.allowed:
            return True
        if host == "localhost" or host.endswith(".localhost"):
            return True
        if _is_ip(host):
            address = ipaddress.ip_address(host)
            return self.bound in _WILDCARDS or (
                address.is_loopback
                and _is_ip(self.bound)
                and ipaddress.ip_address(self.bound).is_loopback
            )
        return False

    def allows_origin(self, origin: str | None) -> bool:
        """Whether a state-changing request with this ``Origin`` header is accepted."""
        if origin is None:
            return True  # not sent by a browser page
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (sandboxed pages, file://) and anything odd
        return self.allows_host(parts.netloc)
