"""Reading OTLP JSON, the pieces the bridge and the sink share.

OTLP JSON is not plain proto3 JSON: trace and span ids are hex (not base64), enums are
integers (names are accepted too), 64-bit integers may be text, and keys are lowerCamelCase.
These helpers read one field each and never raise for a wrong type, except where a container
that must be a list is not (:class:`~.model.DecodeError`, answer 400).

Usage::

    document = json_document(body)                    # dict, or DecodeError
    for resource_spans in json_list(document, "resourceSpans"): ...
    span_id = json_id(span.get("spanId"), 16)          # int; 0 absent; None malformed
    kind = json_enum(span.get("kind"), KIND_NAMES)
    attributes = json_attributes(span.get("attributes"))
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from .keys import ALWAYS_KEPT
from .model import DecodeError

__all__ = [
    "KIND_NAMES",
    "SEVERITY_NAMES",
    "STATUS_NAMES",
    "json_any_value",
    "json_attributes",
    "json_dict",
    "json_document",
    "json_enum",
    "json_id",
    "json_int",
    "json_limited_attributes",
    "json_list",
]

KIND_NAMES = {
    f"SPAN_KIND_{name}": number
    for number, name in enumerate(
        ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
    )
}
STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
SEVERITY_NAMES = {
    f"SEVERITY_NUMBER_{level}{suffix}": base + offset
    for level, base in (
        ("TRACE", 1),
        ("DEBUG", 5),
        ("INFO", 9),
        ("WARN", 13),
        ("ERROR", 17),
        ("FATAL", 21),
    )
    for offset, suffix in enumerate(("", "2", "3", "4"))
}
SEVERITY_NAMES["SEVERITY_NUMBER_UNSPECIFIED"] = 0

_HEX = re.compile(r"[0-9a-fA-F]+")
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


def json_id(value: Any, length: int) -> int | None:
    """A hex id of ``length`` digits as an int; 0 when absent; None when malformed."""
    if value is None or value == "":
        return 0
    if not isinstance(value, str) or len(value) != length or not _HEX.fullmatch(value):
        return None
    return int(value, 16)


def json_int(value: Any, default: int = 0) -> int:
    """A 64-bit integer written as a JSON number or as text (``default`` when it is neither)."""
    if isinstance(value, bool) or value is None:
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else default
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return default
    return default


def json_enum(value: Any, names: Mapping[str, int]) -> int:
    """An enum written as its number (or text of it) or as its name."""
    if isinstance(value, str) and value in names:
        return names[value]
    return json_int(value)


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
        except (TypeError, ValueError):
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
