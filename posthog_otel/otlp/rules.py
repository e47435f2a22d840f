"""What a valid span or log record is: the one set of rules the bridge and the sink apply.

Both consumers read items through the same readers (:func:`._wire_traces.span_head`,
:func:`._wire_logs.log_head` for protobuf; :mod:`.json_items` for OTLP JSON), and every check
on a field is made here, so for the same input they reject the same items with the same
reason. As OTLP/HTTP receivers do, a malformed field rejects its item alone (counted in
``partial_success``); a body that is not an export request at all is a
:class:`~.model.DecodeError` (answer 400).

The rules:

- ids are bytes in protobuf and hex text in JSON; a span needs a trace id (16 bytes) and a
  span id (8 bytes), neither all zeros; a parent span id, and a log record's ids, may be
  absent (all zeros is absent too) but never of another length; link ids are not checked
  (a malformed one reads as absent).
- a span needs a name.
- in JSON, times, flags and enums (kind, status code, severity) are integers (as numbers or
  text) or, for enums, their names; times and flags are unsigned 64-bit; text fields are
  strings, attribute/event/link fields lists, ``status`` an object. Protobuf fixes those types
  on the wire already.

Usage::

    problem = span_problem(trace_id, span_id, parent_id, name)   # None, or the reason
    start = json_uint(span.get("startTimeUnixNano"), "startTimeUnixNano")  # or Rejected
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = [
    "KIND_NAMES",
    "LOG_SPAN_ID",
    "LOG_TRACE_ID",
    "PARENT_SPAN_ID",
    "SEVERITY_NAMES",
    "SPAN_ID",
    "STATUS_NAMES",
    "TRACE_ID",
    "IdField",
    "Rejected",
    "id_problem",
    "json_array",
    "json_enum",
    "json_hex_id",
    "json_link_id",
    "json_object",
    "json_text",
    "json_uint",
    "link_id",
    "log_problem",
    "span_problem",
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

_HEX = re.compile(r"[0-9a-fA-F]*")
_INTEGER = re.compile(r"-?[0-9]+")
_U64 = 1 << 64
_I32 = 1 << 31


class Rejected(ValueError):
    """One span or log record is not valid; the message is the reason (rejected alone)."""


class IdField(NamedTuple):
    name: str
    size: int  # bytes
    required: bool


TRACE_ID = IdField("traceId", 16, required=True)
SPAN_ID = IdField("spanId", 8, required=True)
PARENT_SPAN_ID = IdField("parentSpanId", 8, required=False)
LOG_TRACE_ID = IdField("traceId", 16, required=False)
LOG_SPAN_ID = IdField("spanId", 8, required=False)

_ZERO_TRACE = bytes(TRACE_ID.size)
_ZERO_SPAN = bytes(SPAN_ID.size)


# --------------------------------------------------------------------------- ids, names


def id_problem(value: bytes, field: IdField) -> str | None:
    """Why ``value`` is not a valid ``field`` (None when it is; b"" is an absent id)."""
    if not value:
        return f"{field.name} is missing" if field.required else None
    if len(value) != field.size:
        return f"{field.name} is {len(value)} bytes, not {field.size}"
    if field.required and not any(value):
        return f"{field.name} is all zeros"
    return None


def span_problem(trace_id: bytes, span_id: bytes, parent_id: bytes, name: str) -> str | None:
    """Why a span with these ids and name is rejected; None when it is valid. The first test
    is the common case in one expression (the bridge calls this for every span)."""
    if (
        len(trace_id) == 16
        and len(span_id) == 8
        and (not parent_id or len(parent_id) == 8)
        and name
        and trace_id != _ZERO_TRACE
        and span_id != _ZERO_SPAN
    ):
        return None
    return (
        id_problem(trace_id, TRACE_ID)
        or id_problem(span_id, SPAN_ID)
        or id_problem(parent_id, PARENT_SPAN_ID)
        or (None if name else "span has no name")
    )


def log_problem(trace_id: bytes, span_id: bytes) -> str | None:
    """Why a log record with these ids is rejected; None when it is valid."""
    return id_problem(trace_id, LOG_TRACE_ID) or id_problem(span_id, LOG_SPAN_ID)


def link_id(value: bytes, size: int) -> str | None:
    """A link's id as hex; None when absent, all zeros or malformed (links are not checked)."""
    return value.hex() if len(value) == size and any(value) else None


# --------------------------------------------------------------------------- OTLP JSON fields


def json_hex_id(value: Any, field: IdField) -> bytes:
    """A JSON hex id as bytes (b"" when absent); Rejected when it is not ``2 * size`` hex
    digits. Whether it may be absent or zero is :func:`id_problem`'s question."""
    if value is None or value == "":
        return b""
    if not isinstance(value, str) or len(value) != 2 * field.size or not _HEX.fullmatch(value):
        raise Rejected(f"{field.name} {str(value)[:64]!r} is not {2 * field.size} hex digits")
    return bytes.fromhex(value)


def json_link_id(value: Any, size: int) -> bytes:
    """A link's JSON hex id as bytes; b"" when it is not ``2 * size`` hex digits."""
    if isinstance(value, str) and len(value) == 2 * size and _HEX.fullmatch(value):
        return bytes.fromhex(value)
    return b""


def _integer(value: Any) -> int | None:
    """A JSON integer: a number without a fraction, or its decimal text; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    return None


def json_uint(value: Any, name: str) -> int:
    """An unsigned 64-bit integer field (times, flags); 0 when absent; else Rejected."""
    if value is None or value == "":
        return 0
    number = _integer(value)
    if number is None:
        raise Rejected(f"{name} {str(value)[:40]!r} is not an integer")
    if not 0 <= number < _U64:
        raise Rejected(f"{name} {str(value)[:40]} is out of range")
    return number


def json_enum(value: Any, names: Mapping[str, int], name: str) -> int:
    """An enum field written as its number (or its text) or its name; 0 when absent."""
    if value is None or value == "":
        return 0
    if isinstance(value, str) and value in names:
        return names[value]
    number = _integer(value)
    if number is None or not -_I32 <= number < _I32:
        raise Rejected(f"{name} {str(value)[:40]!r} is neither a known name nor an integer")
    return number


def json_text(value: Any, name: str) -> str:
    """A string field; "" when absent; Rejected for another JSON type."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Rejected(f"{name} is not a string")
    return value


def json_array(value: Any, name: str) -> list[Any]:
    """A list field (attributes, events, links); [] when absent; Rejected for another type."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Rejected(f"{name} is not a list")
    return value


def json_object(value: Any, name: str) -> dict[str, Any]:
    """An object field (status, resource, scope); {} when absent; Rejected for another type."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Rejected(f"{name} is not an object")
    return value
