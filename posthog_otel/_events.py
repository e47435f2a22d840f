"""How the client builds an event, step by step in posthog-python's order.

Private to the client layer (:mod:`posthog_otel.client` is its one user). Nothing here queues
or sends; these are the pure steps between a ``capture`` call and the finished event dict:

1. caller properties, then the runtime properties (``$os``, ``$python_version``…) over them;
2. the context: its tags under the properties, ``$context_tags``, ``$session_id`` (and our
   ``$window_id``/``$device_id``), ``posthog.*`` OTel baggage when no context set them;
3. the distinct id: the argument, else the context's, else a random one with
   ``$process_person_profile: false``;
4. ``$groups``; the trace and span ids of the current span;
5. :func:`finish`: timestamp and uuid normalised, ``$lib``/``$lib_version``, ``$geoip_disable``,
   super properties over everything, ``$release_id``, ``$is_server``.

Usage::

    props = with_context(ctx, resolved, {**properties, **runtime_properties()})
    distinct_id, personless = resolve_distinct_id(distinct_id, resolved, ctx)
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid as uuid_module
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace

from . import _identity
from .config import ClientSettings
from .context import current_scope
from .delivery.encoding import clean
from .version import __version__

if TYPE_CHECKING:
    from .context.scope import Resolved

__all__ = [
    "LIBRARY",
    "add_trace_ids",
    "clean",
    "event_timestamp",
    "event_uuid",
    "finishing_properties",
    "release_id",
    "remove_excluded",
    "resolve_distinct_id",
    "resolve_scope",
    "run_before_send",
    "stringify_id",
    "with_context",
    "with_tags",
]

_logger = logging.getLogger("posthog.otel")

LIBRARY = {"$lib": "posthog-otel", "$lib_version": __version__}
_DATE_ONLY = re.compile(r"\d{4}-?\d{2}-?\d{2}")
_COMPACT_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def resolve_scope(ctx: otel_context.Context) -> Resolved | None:
    """The effective state of the context's PostHog scope, or None outside any."""
    scope = current_scope(ctx)
    return scope.resolve() if scope is not None else None


def stringify_id(value: Any) -> str | None:
    """An id as text (``None`` stays ``None``), as posthog-python reads ids."""
    if value is None or isinstance(value, str):
        return value
    return str(value)


def release_id(environ: Mapping[str, str] | None = None) -> str | None:
    """``POSTHOG_RELEASE_ID`` (trimmed; blank means unset), sent as ``$release_id``."""
    raw = (os.environ if environ is None else environ).get("POSTHOG_RELEASE_ID")
    return (raw.strip() or None) if raw is not None else None


def finishing_properties(settings: ClientSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """What :func:`finish` puts on every event: (under super properties, over them)."""
    under: dict[str, Any] = dict(LIBRARY)
    if settings.disable_geoip:
        under["$geoip_disable"] = True
    over: dict[str, Any] = dict(settings.super_properties or {})
    release = release_id()
    if release is not None and "$release_id" not in over:
        over["$release_id"] = release
    if settings.is_server:
        over["$is_server"] = True
    return under, over


def with_tags(resolved: Resolved | None, props: dict[str, Any]) -> dict[str, Any]:
    """``props`` over the context's tags, with ``$context_tags`` and the context's session.

    What posthog-python adds from a context (to events, and into ``$set``/``$set_once``).
    """
    if resolved is None:
        return props
    tags = resolved.tags
    merged = dict(tags) if tags else {}
    merged["$context_tags"] = list(tags)
    merged.update(props)
    session = resolved.session_id
    if session is not None and "$session_id" not in merged:
        merged["$session_id"] = session
    return merged


def with_context(
    ctx: otel_context.Context, resolved: Resolved | None, props: dict[str, Any]
) -> dict[str, Any]:
    """:func:`with_tags`, and the context's other ids and ``posthog.*`` OTel baggage."""
    if resolved is not None:
        props = with_tags(resolved, props)
        _identity.event_properties(resolved.ids, props)
    entries = otel_baggage.get_all(ctx)
    if entries:
        ids = {
            field.name: value
            for field in _identity.FIELDS
            if field is not _identity.DISTINCT_ID
            and isinstance(value := entries.get(field.attribute), str)
        }
        if ids:
            _identity.event_properties(ids, props)
    return props


def resolve_distinct_id(
    passed: Any, resolved: Resolved | None, ctx: otel_context.Context
) -> tuple[str, bool]:
    """(distinct id, personless): the argument, the context's, OTel baggage's, or random."""
    text = stringify_id(passed)
    if text:
        return text, False
    if resolved is not None and resolved.distinct_id:
        return resolved.distinct_id, False
    entries = otel_baggage.get_all(ctx)
    if entries:
        from_baggage = entries.get(_identity.DISTINCT_ID.attribute)
        if isinstance(from_baggage, str) and from_baggage:
            return from_baggage, False
    return new_uuid(), True


# Random bytes for new uuids, 16 per uuid, from one os.urandom read per 256 uuids. Every
# os.urandom call releases the GIL; in a busy server the event loop or request thread then
# waits for another thread to hand it back (up to the 5 ms switch interval), which made
# uuid4() one of the costliest steps of a request. Cleared in a forked child, so no two
# processes ever draw the same bytes.
_RANDOM_IDS: list[bytes] = []
_UUID_CLEAR = ((1 << 128) - 1) ^ ((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def new_uuid() -> str:
    """A new random uuid (version 4) as text, like ``str(uuid.uuid4())``."""
    try:
        raw = _RANDOM_IDS.pop()
    except IndexError:
        block = os.urandom(4096)
        _RANDOM_IDS.extend([block[i : i + 16] for i in range(16, 4096, 16)])  # one atomic call
        raw = block[:16]
    text = f"{(int.from_bytes(raw, 'big') & _UUID_CLEAR) | _UUID_SET:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_RANDOM_IDS.clear)


def add_trace_ids(ctx: otel_context.Context, props: dict[str, Any]) -> None:
    """``$trace_id``/``$span_id`` of the current span, unless the caller set them."""
    span_context = trace.get_current_span(ctx).get_span_context()
    if span_context.is_valid:
        if "$trace_id" not in props:
            props["$trace_id"] = format(span_context.trace_id, "032x")
        if "$span_id" not in props:
            props["$span_id"] = format(span_context.span_id, "016x")


def remove_excluded(
    props: dict[str, Any], excluded: Callable[[str], bool], keep: Mapping[str, Any]
) -> None:
    """Drop properties named by ``exclude_properties`` (tags, caller properties, span
    attributes alike; the library's own properties stay), and their ``$context_tags`` names."""
    for key in [k for k in props if k not in keep and excluded(k)]:
        del props[key]
    tags = props.get("$context_tags")
    if isinstance(tags, list) and any(excluded(t) for t in tags if isinstance(t, str)):
        props["$context_tags"] = [t for t in tags if not (isinstance(t, str) and excluded(t))]


def event_uuid(value: Any) -> str:
    """The event's uuid as text: ``value`` when it is a valid uuid, else a new random one."""
    if value is None:
        return new_uuid()
    if isinstance(value, uuid_module.UUID):
        return str(value)
    text = stringify_id(value)
    try:
        if text:
            uuid_module.UUID(text)
            return text
    except ValueError:
        pass
    _logger.error("invalid event uuid %r; a new one was generated", value)
    return new_uuid()


def event_timestamp(value: Any) -> float | str:
    """The wire timestamp: now (epoch seconds, formatted by the encoder) or UTC ISO text.

    Datetimes are converted to UTC; a naive one is local time when it is within five seconds
    before now (``datetime.now()``), UTC otherwise. ISO-8601 strings (``Z`` and ``+0530``
    offsets too) are parsed; a bare date or unparseable text is logged and replaced by now.
    Epoch seconds (int or float) are accepted too.
    """
    if value is None:
        return time.time()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        if isinstance(value, str):
            value = _parse_iso(value)
        if isinstance(value, datetime):
            return _to_utc(value).isoformat()
    except (ValueError, OverflowError):
        pass
    _logger.warning("invalid timestamp %r; using the current UTC time", value)
    return time.time()


def _parse_iso(text: str) -> datetime:
    if _DATE_ONLY.fullmatch(text):
        raise ValueError("a date without a time")
    return datetime.fromisoformat(_COMPACT_OFFSET.sub(r"\1:\2", text.replace("Z", "+00:00")))


def _to_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        age = (datetime.now() - moment).total_seconds()
        # made by datetime.now() moments ago: local time; otherwise the best guess is UTC
        local = 0 <= age < 5
        moment = moment.astimezone() if local else moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def run_before_send(
    before_send: Callable[[dict[str, Any]], Any], message: dict[str, Any]
) -> dict[str, Any] | None:
    """What ``before_send`` returns for the (cleaned) message, cleaned; None when it drops
    the event, raises or returns something other than a dict (the event is then not sent)."""
    try:
        result = before_send(message)
    except Exception:
        _logger.exception("before_send raised; event %r dropped", message.get("event"))
        return None
    if result is None:
        _logger.debug("before_send dropped event %r", message.get("event"))
        return None
    if not isinstance(result, dict):
        _logger.error("before_send returned %s, not a dict; event dropped", type(result).__name__)
        return None
    cleaned: dict[str, Any] = clean(result)
    return cleaned
