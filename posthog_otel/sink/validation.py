"""Check one PostHog event the way PostHog's ingestion would, and describe it as a Record.

The rules, each with the error code the sink answers with:

* ``missing_api_key`` (401): no project token in the body (``api_key``, ``token``, ``$token``)
  nor in the event (the same keys, or ``properties.token``).
* ``missing_event_name`` / ``invalid_event_name``: ``event`` must be a non-empty string.
* ``invalid_properties``: ``properties`` must be an object (absent or null means empty);
  ``$set`` / ``$set_once`` too, at the top level and inside ``properties``.
* ``missing_distinct_id`` / ``invalid_distinct_id``: ``distinct_id`` (or ``properties.distinct_id``)
  must be present and non-empty; numbers are turned into text as PostHog does, objects and
  arrays are refused. The one exception is a cookieless event (``properties.$cookieless_mode``
  true), whose id PostHog assigns on the server. Personless events
  (``$process_person_profile: false``) still need a distinct id.
* ``invalid_timestamp``: ``timestamp`` (and ``sent_at``) must be ISO-8601 text when present.
* ``invalid_uuid``: ``uuid`` must be a UUID when present.
* ``invalid_exception_list``: a ``$exception`` event must carry a well-formed
  ``properties.$exception_list`` (a non-empty list of ``{"type", "value", "mechanism",
  "stacktrace": {"frames": [...]}}`` entries; see ``spec/posthog-wire.md``).

Things PostHog accepts but handles specially become warnings shown in the viewer (placeholder
distinct ids such as ``"None"``, ids over 200 characters, timestamps far in the future, person
properties on personless events).

Usage::

    try:
        record = validate_event(event, endpoint="/batch/", body_token="phc_x", now=time.time())
    except Rejection as problem:
        print(problem.status, problem.code, problem.detail)
"""

from __future__ import annotations

import math
import re
import uuid as uuid_module
from datetime import datetime, timezone
from typing import Any

from .._identity import SESSION_ID
from .records import KIND_EVENT, Record

__all__ = ["Rejection", "exception_list_problem", "parse_timestamp", "token_of", "validate_event"]

SESSION_PROPERTY = SESSION_ID.event_property  # where PostHog reads an event's session

_MAX_DISTINCT_ID = 200
_FUTURE_TOLERANCE = 23 * 3600.0

# Ids PostHog refuses to merge persons on: they are almost always a bug in the sender.
_PLACEHOLDER_IDS_ANY_CASE = frozenset(
    {
        "anonymous",
        "guest",
        "distinctid",
        "distinct_id",
        "id",
        "not_authenticated",
        "email",
        "undefined",
        "true",
        "false",
    }
)
_PLACEHOLDER_IDS_EXACT = frozenset({"[object Object]", "NaN", "None", "none", "null", "0"})

_ISO = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:[.,](?P<frac>\d+))?)?"
    r"\s*(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?$"
)


class Rejection(Exception):
    """Why an event (or a whole request) is refused: an HTTP status, a code and a detail."""

    def __init__(self, code: str, detail: str, *, status: int = 400, attr: str | None = None):
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.attr = attr

    @property
    def error_type(self) -> str:
        return "authentication_error" if self.status == 401 else "validation_error"

    def answer(self) -> dict[str, Any]:
        """The JSON error body PostHog-style APIs answer with."""
        return {
            "type": self.error_type,
            "code": self.code,
            "detail": self.detail,
            "attr": self.attr,
        }


def token_of(container: Any) -> str | None:
    """The project token a body or an event carries, if any (``api_key``/``token``/``$token``)."""
    if not isinstance(container, dict):
        return None
    for key in ("api_key", "token", "$token"):
        value = container.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def parse_timestamp(value: str) -> datetime:
    """Parse ISO-8601 text as senders write it (``Z``, any fraction digits, no offset = UTC)."""
    match = _ISO.match(value.strip())
    if match is None:
        raise ValueError(f"not an ISO-8601 timestamp: {value[:80]!r}")
    text = match["date"]
    if match["time"]:
        clock = match["time"] if match["time"].count(":") == 2 else match["time"] + ":00"
        text += "T" + clock
        if match["frac"]:
            text += "." + (match["frac"] + "000000")[:6]
    else:
        text += "T00:00:00"
    tz = match["tz"]
    if tz is None or tz in ("Z", "z"):
        tz = "+00:00"
    elif len(tz) == 3:
        tz += ":00"
    elif ":" not in tz:
        tz = tz[:3] + ":" + tz[3:]
    return datetime.fromisoformat(text + tz)


def validate_event(
    event: Any, *, endpoint: str, body_token: str | None, now: float, index: int | None = None
) -> Record:
    """Check one event; return its Record or raise :class:`Rejection` naming what is wrong.

    ``index`` is the event's position in a batch (named in error details as ``batch[i]``).
    """
    where = f"batch[{index}]" if index is not None else "the event"
    if not isinstance(event, dict):
        raise Rejection("invalid_payload", f"{where} is not a JSON object", attr="batch")
    properties = event.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise Rejection(
            "invalid_properties", f"{where}: properties must be an object", attr="properties"
        )
    token = token_of(event) or body_token or token_of(properties)
    if token is None:
        raise Rejection(
            "missing_api_key",
            "API key not provided: put your project API key in the body as api_key.",
            status=401,
            attr="api_key",
        )
    name = event.get("event")
    if name is None:
        raise Rejection("missing_event_name", f"{where} has no event name", attr="event")
    if not isinstance(name, str) or not name.strip():
        raise Rejection(
            "invalid_event_name", f"{where}: event must be a non-empty string", attr="event"
        )
    record = Record(kind=KIND_EVENT, endpoint=endpoint, api_key=token, event=name, raw=event)
    record.properties = properties
    record.distinct_id = _distinct_id(event, properties, where, record.warnings)
    _check_person_updates(event, properties, where, record.warnings)
    record.timestamp, record.ts = _event_time(event, where, now, record.warnings)
    record.uuid = _event_uuid(event, where)
    if name == "$exception":
        problem = exception_list_problem(properties.get("$exception_list"))
        if problem is not None:
            raise Rejection(
                "invalid_exception_list",
                f"{where} ($exception): {problem}",
                attr="properties.$exception_list",
            )
    record.session_id = _text(properties.get(SESSION_PROPERTY))
    trace_id = _text(properties.get("$trace_id"))
    record.trace_id = trace_id.lower() if trace_id else None
    span_id = _text(properties.get("$span_id"))
    record.span_id = span_id.lower() if span_id else None
    return record


def exception_list_problem(value: Any) -> str | None:
    """What is wrong with a ``$exception_list``, or None when it is well formed."""
    if value is None:
        return "properties.$exception_list is missing (a list of exception entries is required)"
    if not isinstance(value, list):
        return "properties.$exception_list must be a list"
    if not value:
        return "properties.$exception_list is empty"
    for number, entry in enumerate(value):
        problem = _entry_problem(entry)
        if problem is not None:
            return f"$exception_list[{number}]: {problem}"
    return None


# --------------------------------------------------------------------------- helpers


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _distinct_id(
    event: dict[str, Any], properties: dict[str, Any], where: str, warnings: list[str]
) -> str:
    value = event.get("distinct_id")
    if value is None:
        value = properties.get("distinct_id")
    if value is None:
        value = properties.get("$distinct_id")
    if value is None:
        if properties.get("$cookieless_mode") is True:
            warnings.append("cookieless event: PostHog assigns the distinct id on the server")
            return "$posthog_cookieless"
        raise Rejection("missing_distinct_id", f"{where} has no distinct_id", attr="distinct_id")
    if isinstance(value, (bool, dict | list)):
        raise Rejection(
            "invalid_distinct_id",
            f"{where}: distinct_id must be a string, got {type(value).__name__}",
            attr="distinct_id",
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise Rejection("invalid_distinct_id", f"{where}: distinct_id is not a number")
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        raise Rejection("invalid_distinct_id", f"{where}: distinct_id is empty", attr="distinct_id")
    if len(text) > _MAX_DISTINCT_ID:
        warnings.append(f"distinct_id longer than {_MAX_DISTINCT_ID} characters: PostHog cuts it")
        text = text[:_MAX_DISTINCT_ID]
    if text in _PLACEHOLDER_IDS_EXACT or text.lower() in _PLACEHOLDER_IDS_ANY_CASE:
        warnings.append(
            f"distinct_id {text!r} looks like a placeholder: PostHog will not merge persons "
            "on it (str(None) or an unset variable?)"
        )
    return text


def _check_person_updates(
    event: dict[str, Any], properties: dict[str, Any], where: str, warnings: list[str]
) -> None:
    for holder, prefix in ((event, ""), (properties, "properties.")):
        for key in ("$set", "$set_once"):
            value = holder.get(key)
            if value is not None and not isinstance(value, dict):
                raise Rejection(
                    "invalid_properties", f"{where}: {prefix}{key} must be an object", attr=key
                )
    personless = properties.get("$process_person_profile") is False
    updates = any(
        holder.get(key) for holder in (event, properties) for key in ("$set", "$set_once")
    )
    if personless and updates:
        warnings.append("person properties on a personless event are ignored by PostHog")


def _event_time(
    event: dict[str, Any], where: str, now: float, warnings: list[str]
) -> tuple[str | None, float]:
    if event.get("sent_at") is not None:
        _parsed(event["sent_at"], where, "sent_at")
    value = event.get("timestamp")
    if value is None:
        offset = event.get("offset")
        if isinstance(offset, int | float) and not isinstance(offset, bool):
            moment = now - float(offset) / 1000.0
            return datetime.fromtimestamp(moment, timezone.utc).isoformat(), moment
        return None, now
    parsed = _parsed(value, where, "timestamp")
    moment = parsed.timestamp()
    if moment > now + _FUTURE_TOLERANCE:
        warnings.append("timestamp is more than 23 hours in the future: PostHog uses now instead")
    return value, moment


def _parsed(value: Any, where: str, key: str) -> datetime:
    if not isinstance(value, str):
        raise Rejection("invalid_timestamp", f"{where}: {key} must be ISO-8601 text", attr=key)
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError):
        raise Rejection(
            "invalid_timestamp", f"{where}: {key} {value[:80]!r} is not ISO-8601", attr=key
        ) from None


def _event_uuid(event: dict[str, Any], where: str) -> str | None:
    value = event.get("uuid")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return str(uuid_module.UUID(value))
        except ValueError:
            pass
    raise Rejection("invalid_uuid", f"{where}: uuid {str(value)[:80]!r} is not a UUID", attr="uuid")


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "an entry must be an object"
    kind = entry.get("type")
    if not isinstance(kind, str) or not kind:
        return "type must be a non-empty string (the exception class)"
    value = entry.get("value")
    if value is not None and not isinstance(value, str):
        return "value must be a string (the exception message)"
    module = entry.get("module")
    if module is not None and not isinstance(module, str):
        return "module must be a string or null"
    mechanism = entry.get("mechanism")
    if mechanism is not None:
        if not isinstance(mechanism, dict):
            return "mechanism must be an object"
        handled = mechanism.get("handled")
        if handled is not None and not isinstance(handled, bool):
            return "mechanism.handled must be true or false"
    stacktrace = entry.get("stacktrace")
    if stacktrace is None:
        return None
    if not isinstance(stacktrace, dict):
        return "stacktrace must be an object"
    frames = stacktrace.get("frames")
    if not isinstance(frames, list):
        return "stacktrace.frames must be a list"
    for number, frame in enumerate(frames):
        problem = _frame_problem(frame)
        if problem is not None:
            return f"stacktrace.frames[{number}]: {problem}"
    return None


def _frame_problem(frame: Any) -> str | None:
    if not isinstance(frame, dict):
        return "a frame must be an object"
    for key in ("filename", "abs_path", "function", "module", "platform", "context_line"):
        value = frame.get(key)
        if value is not None and not isinstance(value, str):
            return f"{key} must be a string or null"
    lineno = frame.get("lineno")
    if lineno is not None and (not isinstance(lineno, int) or isinstance(lineno, bool)):
        return "lineno must be an integer"
    in_app = frame.get("in_app")
    if in_app is not None and not isinstance(in_app, bool):
        return "in_app must be true or false"
    for key in ("pre_context", "post_context"):
        lines = frame.get(key)
        if lines is not None and (
            not isinstance(lines, list) or not all(isinstance(x, str) for x in lines)
        ):
            return f"{key} must be a list of strings"
    return None
