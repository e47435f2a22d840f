"""Inbound baggage: PostHog state read member by member from a header or OpenTelemetry baggage.

Private to :mod:`posthog_otel.propagation`; re-exported by
:mod:`posthog_otel.propagation.baggage`. Malformed members and members over a limit are
skipped and counted; nothing here raises.

Usage::

    from ._baggage_inbound import parse_header

    inbound = parse_header(environ.get("HTTP_BAGGAGE"))
    inbound.distinct_id, inbound.tags
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .. import _identity
from ._baggage_codec import (
    CONTROL,
    MAX_HEADER_BYTES,
    MAX_INBOUND_TAGS,
    MAX_MEMBER_BYTES,
    MAX_MEMBERS,
    MAX_VALUE_CHARS,
    OWS,
    PREFIX,
    TAG_PREFIX,
    count,
    decode_tag_key,
    decode_tag_value,
    sanitize_header_value,
    unquote,
)

__all__ = ["Inbound", "parse_header", "state_from_entries"]

_logger = logging.getLogger("posthog.otel")

_DISTINCT = _identity.DISTINCT_ID.name
_SESSION = _identity.SESSION_ID.name
_ID_NAMES = {field.attribute: field.name for field in _identity.FIELDS}  # member -> field name

# W3C baggage list-member: key (an RFC 7230 token) OWS "=" OWS value (baggage-octets) OWS,
# then optional ";" properties (metadata, ignored). Only posthog.* members are matched.
_MEMBER = re.compile(
    r"(posthog\.[!#$%&'*+\-.^_`|~0-9A-Za-z]*)[ \t]*=[ \t]*"
    r"([\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*)[ \t]*(?:;.*)?",
    re.DOTALL,
)


class Inbound:
    """PostHog state read from baggage members: identity values by field name (sanitised)
    and tags (typed)."""

    __slots__ = ("ids", "tags")

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.tags: dict[str, Any] = {}

    def __bool__(self) -> bool:
        return bool(self.ids or self.tags)

    def __repr__(self) -> str:
        return f"Inbound(ids={self.ids!r}, tags={self.tags!r})"

    @property
    def distinct_id(self) -> str | None:
        return self.ids.get(_DISTINCT)

    @property
    def session_id(self) -> str | None:
        return self.ids.get(_SESSION)

    def set_id(self, name: str, value: object) -> None:
        """Set identity field ``name`` from an untrusted value (sanitised; empty: unchanged)."""
        text = sanitize_header_value(value)
        if text:
            self.ids[name] = text


def _header_text(values: object) -> str | None:
    """One header string from what a getter returned (a list of values, a str, or bytes)."""
    if values is None:
        return None
    if isinstance(values, str):
        return values
    if isinstance(values, bytes | bytearray):
        return bytes(values).decode("latin-1")
    parts: list[str] = []
    size = 0
    for value in values if isinstance(values, Iterable) else (values,):
        if isinstance(value, bytes | bytearray):
            value = bytes(value).decode("latin-1")
        elif not isinstance(value, str):
            continue
        parts.append(value)
        size += len(value) + 1
        if size > MAX_HEADER_BYTES:
            break
    return ",".join(parts)


def parse_header(values: object) -> Inbound:
    """PostHog state from inbound baggage header value(s), member by member. Never raises.

    Only ``posthog.*`` members are read; malformed ones and ones over a limit are skipped
    and counted, the rest are kept. Only the first 8192 bytes of the header are considered.
    """
    inbound = Inbound()
    try:
        header = _header_text(values)
        if header:
            _parse_into(inbound, header)
    except Exception:  # a bug here must not reach the app
        count("inbound_malformed", 1, "baggage header could not be read")
        _logger.debug("posthog-otel could not read a baggage header", exc_info=True)
    return inbound


def _parse_into(inbound: Inbound, header: str) -> None:
    if len(header) > MAX_HEADER_BYTES:
        cut = header.rfind(",", 0, MAX_HEADER_BYTES + 1)
        count("inbound_over_limit", 1, f"baggage header of {len(header)} bytes cut at 8192")
        header = header[:cut] if cut > 0 else ""
    members = header.split(",")
    if len(members) > MAX_MEMBERS:
        extra = sum(1 for m in members[MAX_MEMBERS:] if m.strip(OWS))
        if extra:
            count("inbound_over_limit", extra, "more than 180 baggage members")
        members = members[:MAX_MEMBERS]
    tags = inbound.tags
    ids = inbound.ids
    match_member = _MEMBER.fullmatch
    for raw in members:
        member = raw.strip(OWS)
        if not member.startswith(PREFIX):
            continue
        if len(member) > MAX_MEMBER_BYTES:
            count("inbound_over_limit", 1, "baggage member over 4096 bytes")
            continue
        match = match_member(member)
        if match is None:
            count("inbound_malformed", 1, f"bad baggage member {member!r}")
            continue
        key, value = match.groups()
        text = unquote(value) if "%" in value else value
        if key.startswith(TAG_PREFIX):
            name = decode_tag_key(key[len(TAG_PREFIX) :])
            if not name.isprintable():
                name = CONTROL.sub("", name)
            if not name:
                count("inbound_malformed", 1, f"empty tag key in {key!r}")
                continue
            if len(text) > MAX_VALUE_CHARS:
                count("inbound_over_limit", 1, f"tag {name!r} over 1000 characters")
                continue
            if name not in tags and len(tags) >= MAX_INBOUND_TAGS:
                count("inbound_over_limit", 1, f"tag {name!r} beyond 64 tags")
                continue
            tag_value = decode_tag_value(text)
            if type(tag_value) is str and not tag_value.isprintable():
                tag_value = CONTROL.sub("", tag_value)
            tags[name] = tag_value
        else:
            field_name = _ID_NAMES.get(key)
            if field_name is not None:
                value = sanitize_header_value(text)
                if value:
                    ids[field_name] = value
            # other posthog.* keys are reserved for later versions: ignored


def state_from_entries(entries: Mapping[str, object]) -> Inbound | None:
    """PostHog state from OpenTelemetry baggage entries (``baggage.set_baggage``), or None.

    String tag values follow the wire rule (JSON text takes its type); other objects are kept.
    """
    found: Inbound | None = None
    for key, value in entries.items():
        if not isinstance(key, str) or not key.startswith(PREFIX):
            continue
        if found is None:
            found = Inbound()
        if key.startswith(TAG_PREFIX):
            name = decode_tag_key(key[len(TAG_PREFIX) :])
            if name:
                found.tags[name] = decode_tag_value(value) if isinstance(value, str) else value
        else:
            field_name = _ID_NAMES.get(key)
            if field_name is not None:
                found.set_id(field_name, value)
    return found
