"""Propagation targets: which destinations may receive PostHog identity and tags.

PostHog members (``posthog.*`` baggage) and ``X-POSTHOG-*`` headers go only to destinations
that match a target pattern. Patterns are matched against the destination **host name** (port
and path ignored, as posthog-js matches its tracing hosts); nothing is ever resolved through
DNS.

Pattern forms:

- ``internal`` (the default): loopback (``localhost``, ``*.localhost``, ``127.0.0.0/8``,
  ``::1``), private ranges (``10.0.0.0/8``, ``172.16.0.0/12``, ``192.168.0.0/16``,
  ``fc00::/7``), single-label hosts (``billing``, ``redis``), and ``*.internal``, ``*.local``,
  ``*.svc``, ``*.cluster.local``.
- A host name, exact: ``api.mycorp.com`` (case-insensitive, a trailing dot ignored).
- A glob: ``*.mycorp.com`` (``*`` spans any number of labels; it does not match
  ``mycorp.com`` itself), ``api-?.mycorp.com``. ``*`` alone matches every host.
- A CIDR block or IP address: ``10.20.0.0/16``, ``2001:db8::/32``, ``10.1.2.3``; matches IP
  literal hosts only.
- A regular expression: a compiled ``re.Pattern`` in code, or a string ``re:<expr>`` (for
  environment variables); it must match the whole host name (``fullmatch``).

Usage::

    targets = Targets.from_patterns(["internal", "*.mycorp.com", "re:^api-\\d+\\.example\\.org$"])
    targets.matches_url("https://api.mycorp.com/v1")   # True
    targets.matches_host("api.stripe.com")             # False
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["INTERNAL", "Targets", "host_of", "normalize_host", "validate_pattern"]

INTERNAL = "internal"
"""The keyword naming the default internal-only targets."""

_INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(block)
    for block in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "::1/128",
        "fc00::/7",
    )
)
_INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".svc", ".cluster.local")
_CACHE_LIMIT = 1024
_HOST_CHARS = re.compile(r"[a-z0-9._~%:-]+")  # DNS names (with "_"), IPv4, IPv6 with zone

Pattern = str | re.Pattern[str]


def normalize_host(host: str) -> str:
    """Lower-case, without surrounding brackets (IPv6) or a trailing dot."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host[:-1] if host.endswith(".") else host


def host_of(url: str) -> str | None:
    """The host name of ``url`` (``https://Api.X.com:8443/p`` -> ``api.x.com``), or None.

    A value without ``://`` is taken as a bare host (with an optional port).
    """
    try:
        if "://" not in url:
            url = "//" + url
        host = urlsplit(url).hostname
        if not host:
            return None
        host = normalize_host(host)
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        return None
    return host if _HOST_CHARS.fullmatch(host) else None


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not host or not (host[0].isdigit() or ":" in host):
        return None
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None


def _is_internal(host: str) -> bool:
    address = _ip(host)
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in _INTERNAL_NETWORKS)
    if host == "localhost" or host.endswith(_INTERNAL_SUFFIXES):
        return True
    return "." not in host and ":" not in host  # a single-label name: a cluster-local service


class _Matcher:
    __slots__ = ("glob", "host", "internal", "network", "regex")

    def __init__(self) -> None:
        self.internal = False
        self.host: str | None = None
        self.glob: re.Pattern[str] | None = None
        self.network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
        self.regex: re.Pattern[str] | None = None

    def __call__(self, host: str) -> bool:
        if self.internal:
            return _is_internal(host)
        if self.host is not None:
            return host == self.host
        if self.glob is not None:
            return self.glob.fullmatch(host) is not None
        if self.regex is not None:
            return self.regex.fullmatch(host) is not None
        if self.network is not None:
            address = _ip(host)
            return address is not None and address in self.network
        return False


def _compile(pattern: Pattern) -> _Matcher:
    """One pattern to a matcher; ValueError when it is not a usable pattern."""
    matcher = _Matcher()
    if isinstance(pattern, re.Pattern):
        matcher.regex = pattern
        return matcher
    if not isinstance(pattern, str):
        raise ValueError(f"a target pattern must be a string or re.Pattern, got {pattern!r}")
    text = pattern.strip()
    if not text:
        raise ValueError("a target pattern must not be empty")
    if text.startswith("re:"):
        try:
            matcher.regex = re.compile(text[3:], re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"invalid regular expression in target {pattern!r}: {exc}") from exc
        return matcher
    if text.lower() == INTERNAL:
        matcher.internal = True
        return matcher
    if "/" in text or _ip(normalize_host(text)) is not None:
        try:
            matcher.network = ipaddress.ip_network(normalize_host(text), strict=False)
        except ValueError as exc:
            raise ValueError(f"invalid CIDR block in target {pattern!r}: {exc}") from exc
        return matcher
    host = normalize_host(text)
    if any(c in host for c in " ,;/\\@"):
        raise ValueError(f"invalid host pattern in target {pattern!r}")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise ValueError(f"invalid host name in target {pattern!r}") from exc
    if "*" in host or "?" in host or "[" in host:
        matcher.glob = re.compile(fnmatch.translate(host))
    else:
        matcher.host = host
    return matcher


def validate_pattern(pattern: Pattern) -> None:
    """Raise ValueError when ``pattern`` is not a valid target pattern."""
    _compile(pattern)


class Targets:
    """A compiled set of target patterns with a small per-host decision cache."""

    __slots__ = ("_cache", "_matchers", "patterns")

    def __init__(self, patterns: Iterable[Pattern] = (INTERNAL,)) -> None:
        self.patterns: tuple[Pattern, ...] = tuple(patterns)
        self._matchers = tuple(_compile(p) for p in self.patterns)
        self._cache: dict[str, bool] = {}

    @classmethod
    def from_patterns(cls, patterns: Iterable[Pattern]) -> Targets:
        return cls(patterns)

    def __repr__(self) -> str:
        return f"Targets({list(self.patterns)!r})"

    def matches_host(self, host: str) -> bool:
        """True when ``host`` (already a bare host name) is a propagation target."""
        cached = self._cache.get(host)
        if cached is not None:
            return cached
        if not host:  # a destination whose host could not be read
            return False
        name = normalize_host(host)
        decision = any(matcher(name) for matcher in self._matchers)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[host] = decision
        return decision

    def matches_url(self, url: str) -> bool:
        """True when the host of ``url`` is a target; False when no host can be read."""
        host = host_of(url)
        return host is not None and self.matches_host(host)
