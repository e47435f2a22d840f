"""JSON encoding of events: fast C encoder first, a sanitising walk only when it fails.

PostHog needs valid JSON; Python's defaults would emit ``NaN`` and fail on sets, Decimals,
UUIDs, bytes, dataclasses, datetimes, non-string keys and cycles. Values are converted as
posthog-python converts them (``NaN`` and infinities become ``null``, and so does any object
it would not send); non-string keys become text and cycles are cut.

Usage::

    body = dumps_event({"event": "x", "properties": {"price": Decimal("1.5")}, ...})
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

__all__ = ["clean", "dumps_event", "json_safe", "timestamp_iso"]

_MAX_DEPTH = 64


def timestamp_iso(value: Any) -> str:
    """ISO-8601 UTC text for an epoch float or an aware datetime (a naive one is taken as UTC)."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, timezone.utc).isoformat()
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).isoformat()
    return str(value)


def _default(value: Any) -> Any:
    """A JSON value for what ``json`` cannot encode, as posthog-python sends it.

    Decimals become floats, UUIDs text, sets lists, bytes UTF-8 text, dates and datetimes
    ``isoformat()`` text (a datetime keeps its offset), dataclasses and pydantic models
    objects; anything else, and bytes that are not UTF-8, become ``null``.
    """
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        try:
            return model_dump()
        except Exception:
            return None
    return None


def clean(value: Any) -> Any:
    """``value`` with every part ``json`` cannot encode converted as :func:`_default` does.

    What ``before_send`` sees and returns goes through this, as in posthog-python; the hot
    path leaves the conversion to the encoder instead.
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {key: clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean(item) for item in value]
    if isinstance(value, datetime):
        return value
    converted = _default(value)
    return converted if converted is None or isinstance(converted, str) else clean(converted)


def _text(value: Any) -> str:
    """``str(value)``, or a placeholder naming its type when ``__str__`` itself raises."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def dumps_event(event: dict[str, Any]) -> bytes:
    """Encode one event to compact UTF-8 JSON, converting its timestamp to ISO text."""
    timestamp = event.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, str):
        event["timestamp"] = timestamp_iso(timestamp)
    try:
        text = json.dumps(
            event, default=_default, allow_nan=False, separators=(",", ":"), ensure_ascii=False
        )
    except (ValueError, TypeError, RecursionError, RuntimeError):
        text = json.dumps(
            json_safe(event), allow_nan=False, separators=(",", ":"), ensure_ascii=False
        )
    return text.encode("utf-8", errors="replace")


def json_safe(value: Any, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """A copy of ``value`` that ``json.dumps(allow_nan=False)`` accepts (NaN -> None, cycles cut)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if _depth >= _MAX_DEPTH:
        return str(value)
    if isinstance(value, dict | list | tuple | set | frozenset):
        if id(value) in _seen:
            return "<cycle>"
        seen = _seen | {id(value)}
        if isinstance(value, dict):
            return {_key(k): json_safe(v, _depth + 1, seen) for k, v in list(value.items())}
        return [json_safe(v, _depth + 1, seen) for v in list(value)]
    if isinstance(value, datetime):
        return value.isoformat()
    converted = _default(value)
    if converted is None or isinstance(converted, str):
        return converted
    return json_safe(converted, _depth + 1, _seen)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, float) and not math.isfinite(key):
        return str(key)
    if isinstance(key, bool | int | float) or key is None:
        return json.dumps(key)
    return _text(key)
