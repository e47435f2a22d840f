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
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote_to_bytes

from .. import _identity
from ..delivery.encoding import json_safe

if TYPE_CHECKING:
    from ..context.scope import Resolved

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

_logger = logging.getLogger("posthog_otel")

PREFIX = _identity.PREFIX
TAG_PREFIX = _identity.TAG_PREFIX

MAX_MEMBERS = 180
MAX_MEMBER_BYTES = 4096
MAX_HEADER_BYTES = 8192
MAX_INBOUND_TAGS = 64
MAX_VALUE_CHARS = 1000

_EXTRA_KEY = "posthog_otel.baggage"
_DISTINCT = _identity.DISTINCT_ID.name
_SESSION = _identity.SESSION_ID.name

# W3C baggage list-member: key (an RFC 7230 token) OWS "=" OWS value (baggage-octets) OWS,
# then optional ";" properties (metadata, ignored). Only posthog.* members are matched.
_MEMBER = re.compile(
    r"(posthog\.[!#$%&'*+\-.^_`|~0-9A-Za-z]*)[ \t]*=[ \t]*"
    r"([\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*)[ \t]*(?:;.*)?",
    re.DOTALL,
)
# Left unencoded on output: token/baggage-octet punctuation except "%" (must be encoded) and
# "+" (stock Python readers decode it as a space).
_KEY_SAFE = "!#$&'*-.^_`|~"
_VALUE_SAFE = "!#$&'()*-./:<=>?@[]^_`{|}~"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_JSON_START = frozenset('-0123456789"[{tfn \t\r\n')
_OWS = " \t"

# -- counters -----------------------------------------------------------------------------

_STAT_NAMES = (
    "inbound_malformed",  # unreadable members or header values, skipped
    "inbound_over_limit",  # members skipped by a limit (count, size, 64 tags, 1000 chars)
    "outbound_dropped_tags",  # tag members left out of an injected header to fit the limits
    "outbound_dropped_identity",  # identity members too large to send in baggage at all
    "outbound_withheld",  # injections withheld because the destination is not a target
)
_stats = dict.fromkeys(_STAT_NAMES, 0)
_stats_lock = threading.Lock()


def stats() -> dict[str, int]:
    """A snapshot of the drop counters (process-wide, since start or :func:`reset_stats`)."""
    return dict(_stats)


def reset_stats() -> None:
    """Zero the drop counters (tests)."""
    for name in _STAT_NAMES:
        _stats[name] = 0


def count(name: str, amount: int = 1, detail: str = "") -> None:
    with _stats_lock:
        _stats[name] += amount
    if detail and _logger.isEnabledFor(logging.DEBUG):
        _logger.debug("posthog-otel baggage: %s (%s)", name, detail[:200])


# -- sanitising and value encoding --------------------------------------------------------


def sanitize_header_value(value: object) -> str | None:
    """Identity text from a header or baggage: control characters removed, trimmed, at most
    1000 characters; None when nothing is left. Never raises."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        text = bytes(value[: 8 * MAX_VALUE_CHARS]).decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value
    else:
        try:
            text = str(value)
        except Exception:
            return None
    if len(text) > 8 * MAX_VALUE_CHARS:
        text = text[: 8 * MAX_VALUE_CHARS]
    if not text.isprintable():
        text = _CONTROL.sub("", text)
    text = text.strip()
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS].rstrip()
    return text or None


def _pct(text: str, safe: str) -> str:
    return quote(text, safe=safe, encoding="utf-8", errors="replace")


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN / Infinity are not JSON


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float)
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}


def decode_tag_value(text: str) -> Any:
    """A tag value from its wire text: its JSON value when the text is JSON, else the text."""
    if not text or text[0] not in _JSON_START:
        return text
    literal = _LITERALS.get(text, text)
    if literal is not text:
        return literal
    if text.isdigit() and (text[0] != "0" or len(text) == 1) and len(text) < 19:
        return int(text)
    try:
        return _DECODER.decode(text)
    except (ValueError, RecursionError):
        return text


def _tag_text(value: Any) -> str:
    if isinstance(value, str):
        if value and value[0] in _JSON_START and decode_tag_value(value) != value:
            return json.dumps(value, ensure_ascii=False)
        return value
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return json.dumps(json_safe(value), ensure_ascii=False, separators=(",", ":"))


def encode_tag_value(value: Any) -> str:
    """The percent-encoded wire text of a tag value (see the module docstring)."""
    return _pct(_tag_text(value), _VALUE_SAFE)


def encode_tag_key(key: Any) -> str:
    """A tag key as a baggage token: characters outside the token set percent-encoded."""
    return _pct(key if isinstance(key, str) else str(key), _KEY_SAFE)


def _unquote(text: str) -> str:
    """W3C percent-decoding: ``+`` stays ``+``; invalid UTF-8 becomes U+FFFD; a ``%`` not
    followed by two hex digits stays as it is."""
    return unquote_to_bytes(text).decode("utf-8", "replace")


def decode_tag_key(encoded: str) -> str:
    """The tag key from its token form (an unencoded key from another language unchanged)."""
    return _unquote(encoded) if "%" in encoded else encoded


# -- outbound ----------------------------------------------------------------------------


class Encoded:
    """The baggage members and ``X-POSTHOG-*`` header values of one PostHog state."""

    __slots__ = (
        "alone",
        "alone_dropped",
        "drop_order",
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
        # Tag indices in the order they are dropped when over a limit: largest first, the
        # most recently set first among equals.
        self.drop_order = sorted(range(len(tags)), key=lambda i: (-len(tags[i]), -i))
        members, dropped_tags, dropped_identity = _fit(self, MAX_MEMBERS, MAX_HEADER_BYTES)
        self.alone = ",".join(members)
        self.alone_dropped = (dropped_tags, dropped_identity)

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
        member = f"{field.attribute}={_pct(value, _VALUE_SAFE)}"
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
        member = raw.strip(_OWS)
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


# -- inbound ------------------------------------------------------------------------------


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
        extra = sum(1 for m in members[MAX_MEMBERS:] if m.strip(_OWS))
        if extra:
            count("inbound_over_limit", extra, "more than 180 baggage members")
        members = members[:MAX_MEMBERS]
    tags = inbound.tags
    match_member = _MEMBER.fullmatch
    for raw in members:
        member = raw.strip(_OWS)
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
        text = _unquote(value) if "%" in value else value
        if key.startswith(TAG_PREFIX):
            name = decode_tag_key(key[len(TAG_PREFIX) :])
            if not name.isprintable():
                name = _CONTROL.sub("", name)
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
                tag_value = _CONTROL.sub("", tag_value)
            tags[name] = tag_value
        else:
            field = _identity.BY_ATTRIBUTE.get(key)
            if field is not None:
                inbound.set_id(field.name, text)
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
            field = _identity.BY_ATTRIBUTE.get(key)
            if field is not None:
                found.set_id(field.name, value)
    return found
