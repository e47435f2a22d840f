"""Reading OTLP JSON documents and values, the pieces the bridge and the sink share.

OTLP JSON is not plain proto3 JSON: trace and span ids are hex (not base64), enums are
integers (names are accepted too), 64-bit integers may be text, and keys are lowerCamelCase.
These helpers read the document, its nested lists and attribute values; they never raise for
a wrong type, except where a container that must be a list is not
(:class:`~.model.DecodeError`, answer 400). Checking an item's own fields (ids, times, enums)
is :mod:`.rules`' job, reading them :mod:`.json_items`'.

Usage::

    document = json_document(body)                    # dict, or DecodeError
    for resource_spans in json_list(document, "resourceSpans"): ...
    attributes = json_attributes(span.get("attributes"))
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .keys import ALWAYS_KEPT
from .model import DecodeError

__all__ = [
    "json_any_value",
    "json_attributes",
    "json_dict",
    "json_document",
    "json_limited_attributes",
    "json_list",
]

_MAX_DEPTH = 32  # nested arrayValue/kvlistValue levels kept; deeper values become None


def json_document(body: bytes | bytearray) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``)."""
    try:
        document = json.loads(body or b"{}")
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DecodeError("an OTLP JSON body must be an object")
    return document


def json_list(holder: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """The objects in the list at ``key`` ([] when absent; DecodeError when not a list)."""
    value = holder.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError(f"{key} must be a list")
    return [item for item in value if isinstance(item, dict)]


def json_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def json_any_value(value: Any, depth: int = 0) -> Any:
    """An OTLP JSON ``AnyValue`` as plain Python (64-bit integers may arrive as text)."""
    if not isinstance(value, dict):
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError, OverflowError):
            return value["intValue"]
    if "doubleValue" in value:
        try:
            return float(value["doubleValue"])
        except (TypeError, ValueError, OverflowError):  # 4,000 digits: kept as given
            return value["doubleValue"]
    if depth >= _MAX_DEPTH:
        return None
    if "arrayValue" in value:
        inner = value["arrayValue"]
        items = inner.get("values") if isinstance(inner, dict) else None
        if not isinstance(items, list):
            return []
        return [json_any_value(v, depth + 1) for v in items if isinstance(v, dict)]
    if "kvlistValue" in value:
        inner = value["kvlistValue"]
        return json_attributes(inner.get("values") if isinstance(inner, dict) else None, depth + 1)
    if "bytesValue" in value:
        return value["bytesValue"]  # base64 text, as OTLP JSON writes it
    return None


def json_attributes(value: Any, depth: int = 0) -> dict[str, Any]:
    """An OTLP JSON ``KeyValue`` list as a dict. A missing key is ``""`` (proto3 JSON leaves
    default values out); entries whose key is not text are skipped."""
    if not isinstance(value, list):
        return {}
    return {
        item.get("key", ""): json_any_value(item.get("value"), depth)
        for item in value
        if isinstance(item, dict) and isinstance(item.get("key", ""), str)
    }


def json_limited_attributes(value: Any, limit: int) -> dict[str, Any]:
    """:func:`json_attributes` of the first ``limit`` entries, and of identity, marker and
    exception entries after them."""
    if isinstance(value, list) and len(value) > limit:
        head = value[:limit] + [
            item
            for item in value[limit:]
            if isinstance(item, dict)
            and isinstance(item.get("key"), str)
            and item["key"].startswith(ALWAYS_KEPT)
        ]
        return json_attributes(head)
    return json_attributes(value)
