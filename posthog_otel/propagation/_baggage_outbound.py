"""Outbound baggage: a PostHog state encoded once, fitted into the W3C limits, merged into a header.

Private to :mod:`posthog_otel.propagation`; re-exported by
:mod:`posthog_otel.propagation.baggage`.

Usage::

    from ._baggage_outbound import encoded_for, merge_header

    encoded = encoded_for(scope.resolve())                   # cached per scope state
    header = merge_header(carrier.get("baggage"), encoded)   # others' members kept, ours fitted
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import _identity
from ._baggage_codec import (
    MAX_HEADER_BYTES,
    MAX_MEMBER_BYTES,
    MAX_MEMBERS,
    OWS,
    PREFIX,
    TAG_PREFIX,
    VALUE_SAFE,
    count,
    encode_tag_key,
    encode_tag_value,
    pct,
    sanitize_header_value,
)

if TYPE_CHECKING:
    from ..context.scope import Resolved

__all__ = ["Encoded", "encode", "encoded_for", "merge_header", "split_members"]

_EXTRA_KEY = "posthog_otel.baggage"


class Encoded:
    """The baggage members and ``X-POSTHOG-*`` header values of one PostHog state."""

    __slots__ = (
        "_drop_order",
        "alone",
        "alone_dropped",
        "headers",
        "identity",
        "oversize_identity",
        "oversize_tags",
        "tags",
    )

    def __init__(self, identity: list[str], tags: list[str], headers: tuple[tuple[str, str], ...]):
        self.identity = identity
        self.tags = tags
        self.headers = headers
        self.oversize_identity = 0
        self.oversize_tags = 0
        self._drop_order: list[int] | None = None
        members, dropped_tags, dropped_identity = _fit(self, MAX_MEMBERS, MAX_HEADER_BYTES)
        self.alone = ",".join(members)
        self.alone_dropped = (dropped_tags, dropped_identity)

    @property
    def drop_order(self) -> list[int]:
        """Tag indices in the order they are dropped when over a limit: largest first, the
        most recently set first among equals (worked out only when a limit is crossed)."""
        order = self._drop_order
        if order is None:
            tags = self.tags
            order = self._drop_order = sorted(
                range(len(tags)), key=lambda i: (-len(tags[i]), -i)
            )
        return order

    @property
    def empty(self) -> bool:
        return not (self.identity or self.tags or self.headers)


def encode(ids: Mapping[str, Any], tags: Mapping[Any, Any]) -> Encoded:
    """Encode a PostHog state (identity values by field name, sanitised) into baggage members
    and headers."""
    identity: list[str] = []
    headers: list[tuple[str, str]] = []
    oversize_identity = 0
    for field in _identity.FIELDS:
        value = sanitize_header_value(ids.get(field.name))
        if value is None:
            continue
        if value.isascii():  # HTTP header values: printable ASCII only; baggage carries the rest
            headers.append((field.header, value))
        member = f"{field.attribute}={pct(value, VALUE_SAFE)}"
        if len(member) > MAX_MEMBER_BYTES:
            oversize_identity += 1
        else:
            identity.append(member)
    members: list[str] = []
    oversize_tags = 0
    for key, value in tags.items():
        try:
            member = f"{TAG_PREFIX}{encode_tag_key(key)}={encode_tag_value(value)}"
        except Exception:  # an unencodable value: leave the tag out
            oversize_tags += 1
            continue
        if len(member) > MAX_MEMBER_BYTES:
            oversize_tags += 1
        else:
            members.append(member)
    encoded = Encoded(identity, members, tuple(headers))
    encoded.oversize_identity = oversize_identity
    encoded.oversize_tags = oversize_tags
    return encoded


def encoded_for(resolved: Resolved) -> Encoded:
    """The encoding of a resolved scope state, cached on it (a dict lookup when unchanged)."""
    cached: Encoded | None = resolved.extra.get(_EXTRA_KEY)
    if cached is None:
        cached = encode(resolved.ids, resolved.tags)
        resolved.extra[_EXTRA_KEY] = cached
    return cached


def _fit(encoded: Encoded, max_count: int, max_bytes: int) -> tuple[list[str], int, int]:
    """Our members within ``max_count`` members and ``max_bytes`` (commas included).

    Returns the members and how many tag and identity members were left out. Identity
    members are kept whenever they fit at all; tags make room for them.
    """
    identity, tags = encoded.identity, encoded.tags
    count = len(identity) + len(tags)
    size = sum(map(len, identity)) + sum(map(len, tags)) + count - 1
    if count <= max_count and size <= max_bytes:
        return identity + tags, 0, 0
    kept_identity: list[str] = []
    used = -1
    for member in identity:
        if len(kept_identity) < max_count and used + 1 + len(member) <= max_bytes:
            kept_identity.append(member)
            used += 1 + len(member)
    count_left = max_count - len(kept_identity)
    tag_size = sum(len(t) + 1 for t in tags)
    tag_count = len(tags)
    dropped: set[int] = set()
    for index in encoded.drop_order:
        if tag_count <= count_left and used + tag_size <= max_bytes:
            break
        dropped.add(index)
        tag_count -= 1
        tag_size -= len(tags[index]) + 1
    kept = kept_identity + [t for i, t in enumerate(tags) if i not in dropped]
    return kept, len(dropped), len(identity) - len(kept_identity)


def _account(encoded: Encoded, dropped: tuple[int, int]) -> None:
    dropped_tags = dropped[0] + encoded.oversize_tags
    dropped_identity = dropped[1] + encoded.oversize_identity
    if dropped_tags:
        count("outbound_dropped_tags", dropped_tags, "tag members over the baggage limits")
    if dropped_identity:
        count("outbound_dropped_identity", dropped_identity, "identity members over the limits")


def split_members(header: str) -> tuple[list[str], bool]:
    """The list-members of a baggage header other than ``posthog.*`` ones.

    Returns them (whitespace around each trimmed, empties removed) and whether any
    ``posthog.*`` member was removed.
    """
    others: list[str] = []
    removed = False
    for raw in header.split(","):
        member = raw.strip(OWS)
        if not member:
            continue
        if member.startswith(PREFIX):
            removed = True
            continue
        others.append(member)
    return others, removed


def merge_header(existing: str | None, encoded: Encoded | None) -> str | None:
    """The baggage header to send: ``existing`` without its ``posthog.*`` members, plus ours.

    ``encoded`` None means send no PostHog member (a destination that is not a target). Other
    members are never removed or reordered; ours are fitted in the room they leave. Returns
    None when the result is empty.
    """
    if not existing:
        if encoded is None:
            return None
        _account(encoded, encoded.alone_dropped)
        return encoded.alone or None
    others, removed = split_members(existing)
    if encoded is None:
        if not removed:
            return existing
        return ",".join(others) or None
    if not others:
        _account(encoded, encoded.alone_dropped)
        return encoded.alone or None
    used = sum(map(len, others)) + len(others)  # with the comma before our first member
    if used > MAX_HEADER_BYTES or len(others) >= MAX_MEMBERS:  # no room left by the others
        _account(encoded, (len(encoded.tags), len(encoded.identity)))
        return ",".join(others)
    members, dropped_tags, dropped_identity = _fit(
        encoded, MAX_MEMBERS - len(others), MAX_HEADER_BYTES - used
    )
    _account(encoded, (dropped_tags, dropped_identity))
    return ",".join(others + members)
