"""The codec between PostHog context state and W3C baggage members.

On the wire a scope is a handful of baggage list-members::

    posthog.distinct_id=user-123,posthog.session_id=0190...,posthog.window_id=0190...,
    posthog.tag.plan=pro,posthog.tag.seats=12,posthog.tag.my%20key=a%20b%2Bc

- Identity values are plain text, percent-encoded as W3C requires (space is ``%20``, ``+`` and
  ``%`` are encoded too, so a stock Python reader, which decodes ``+`` as a space, also reads
  them right). On decode a literal ``+`` stays a ``+``.
- Tag values carry their JSON type: a string goes as itself unless it would read back as JSON
  (``"42"``, ``"true"``), in which case it is JSON-quoted; numbers, booleans, null, lists and
  dicts go as compact JSON. On decode, text that parses as JSON takes its JSON type, anything
  else is a string, so ``posthog.tag.plan=pro`` written by another language reads as ``"pro"``.
- Tag keys that are not baggage tokens are percent-encoded (``my key`` ->
  ``posthog.tag.my%20key``) and decoded back.
- Limits (W3C): at most 180 members, 4096 bytes per member, 8192 bytes per header, on inject
  and on extract. Over a limit, whole tag members are dropped (largest first, the most recently
  set first among equals), identity members never, and every drop is counted in :func:`stats`.
  Inbound also keeps at most 64 tags, each value at most 1000 characters.

:func:`sanitize_header_value` is the one rule for identity values from headers and baggage:
control characters removed, trimmed, at most 1000 characters, empty means absent.

Usage::

    encoded = encoded_for(scope.resolve())       # cached per scope state
    header = merge_header(carrier.get("baggage"), encoded)
    inbound = parse_header(environ.get("HTTP_BAGGAGE"))
    inbound.distinct_id, inbound.tags

The code lives in three private siblings: ``_baggage_codec`` (limits, counters, sanitising,
tag value and key encoding), ``_baggage_outbound`` (encoding a state, fitting, merging) and
``_baggage_inbound`` (parsing); this module is their public face.
"""

from __future__ import annotations

from ._baggage_codec import (
    MAX_HEADER_BYTES,
    MAX_INBOUND_TAGS,
    MAX_MEMBER_BYTES,
    MAX_MEMBERS,
    MAX_VALUE_CHARS,
    PREFIX,
    TAG_PREFIX,
    count,
    decode_tag_key,
    decode_tag_value,
    encode_tag_key,
    encode_tag_value,
    reset_stats,
    sanitize_header_value,
    stats,
)
from ._baggage_inbound import Inbound, parse_header, state_from_entries
from ._baggage_outbound import Encoded, encode, encoded_for, merge_header, split_members

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_INBOUND_TAGS",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "MAX_VALUE_CHARS",
    "PREFIX",
    "TAG_PREFIX",
    "Encoded",
    "Inbound",
    "count",
    "decode_tag_key",
    "decode_tag_value",
    "encode",
    "encode_tag_key",
    "encode_tag_value",
    "encoded_for",
    "merge_header",
    "parse_header",
    "reset_stats",
    "sanitize_header_value",
    "split_members",
    "state_from_entries",
    "stats",
]
