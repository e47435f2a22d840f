"""The baggage codec's vocabulary: limits, drop counters, identity sanitising, tag values and keys.

Private to :mod:`posthog_otel.propagation`; the public names are re-exported by
:mod:`posthog_otel.propagation.baggage`, which documents the wire format.

Usage::

    from ._baggage_codec import encode_tag_value, decode_tag_value, sanitize_header_value

    encode_tag_value("42")          # '%2242%22' -- a string that would read back as a number
    decode_tag_value("42")          # 42
    sanitize_header_value(" a\x00b ")  # 'ab'
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from .. import _identity
from ..delivery.encoding import json_safe

__all__ = [
    "CONTROL",
    "MAX_HEADER_BYTES",
    "MAX_INBOUND_TAGS",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "MAX_VALUE_CHARS",
    "OWS",
    "PREFIX",
    "TAG_PREFIX",
    "VALUE_SAFE",
    "count",
    "decode_tag_key",
    "decode_tag_value",
    "encode_tag_key",
    "encode_tag_value",
    "pct",
    "reset_stats",
    "sanitize_header_value",
    "stats",
    "unquote",
]

_logger = logging.getLogger("posthog.otel")

PREFIX = _identity.PREFIX
TAG_PREFIX = _identity.TAG_PREFIX

MAX_MEMBERS = 180
MAX_MEMBER_BYTES = 4096
MAX_HEADER_BYTES = 8192
MAX_INBOUND_TAGS = 64
MAX_VALUE_CHARS = 1000

# Left unencoded on output: token/baggage-octet punctuation except "%" (must be encoded) and
# "+" (stock Python readers decode it as a space).
_KEY_SAFE = "!#$&'*-.^_`|~"
VALUE_SAFE = "!#$&'()*-./:<=>?@[]^_`{|}~"
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_JSON_START = frozenset('-0123456789"[{tfn \t\r\n')
OWS = " \t"

# -- counters -----------------------------------------------------------------------------

_STAT_NAMES = (
    "inbound_malformed",  # unreadable members or header values, skipped
    "inbound_over_limit",  # members skipped by a limit (count, size, 64 tags, 1000 chars)
    "inbound_reserved",  # inbound tags with a "$" key (PostHog's own properties), dropped
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
        text = CONTROL.sub("", text)
    text = text.strip()
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS].rstrip()
    return text or None


_BIG_INT = 10**4000  # below Python's int-to-text digit limit
_ALL_SAFE: dict[str, Callable[[str], object]] = {}


def pct(text: str, safe: str) -> str:
    """``text`` percent-encoded as ``urllib.parse.quote`` does, leaving ``safe`` as it is.

    Text made only of characters that stay as they are (ids, UUIDs, most tags) is returned
    unchanged after one regular-expression match, without ``quote``'s byte-by-byte pass.
    """
    all_safe = _ALL_SAFE.get(safe)
    if all_safe is None:
        all_safe = _ALL_SAFE[safe] = re.compile(f"[A-Za-z0-9_.~\\-{re.escape(safe)}]*").fullmatch
    if all_safe(text) is not None:
        return text
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
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int and -_BIG_INT < value < _BIG_INT:  # as json.dumps writes them
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
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
    return pct(_tag_text(value), VALUE_SAFE)


def encode_tag_key(key: Any) -> str:
    """A tag key as a baggage token: characters outside the token set percent-encoded."""
    return pct(key if isinstance(key, str) else str(key), _KEY_SAFE)


def unquote(text: str) -> str:
    """W3C percent-decoding: ``+`` stays ``+``; invalid UTF-8 becomes U+FFFD; a ``%`` not
    followed by two hex digits stays as it is."""
    return unquote_to_bytes(text).decode("utf-8", "replace")


def decode_tag_key(encoded: str) -> str:
    """The tag key from its token form (an unencoded key from another language unchanged)."""
    return unquote(encoded) if "%" in encoded else encoded
