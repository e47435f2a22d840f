"""How the client builds an event: library properties, context identity, uuid, timestamp.

Private to the client layer (:mod:`posthog_otel.client` is its one user). Nothing here
queues or sends; these are the pure steps between a ``capture`` call and the finished
event dict.

Usage::

    from ._events import event_timestamp, event_uuid, system_properties

    system = system_properties(settings)        # $lib, $lib_version, $os, ... once per client
    message = {"uuid": event_uuid(None), "timestamp": event_timestamp(1700000000)}
"""

from __future__ import annotations

import logging
import time
import uuid as uuid_module
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace

from . import _identity
from ._platform import runtime_properties
from .config import ClientSettings
from .version import __version__

if TYPE_CHECKING:
    from .context.scope import Resolved

__all__ = [
    "apply_geoip",
    "event_timestamp",
    "event_uuid",
    "identify_from_context",
    "remove_excluded",
    "run_before_send",
    "system_properties",
]

_logger = logging.getLogger("posthog_otel")


def system_properties(settings: ClientSettings) -> dict[str, Any]:
    """The library's own properties (``$lib``, ``$os``, …), added to every event."""
    props: dict[str, Any] = {
        **runtime_properties(),
        "$lib": "posthog-otel",
        "$lib_version": __version__,
        "$is_server": True,
    }
    if settings.disable_geoip:
        props["$geoip_disable"] = True
    return props


def apply_geoip(props: dict[str, Any], disable_geoip: bool | None) -> None:
    """A per-call ``disable_geoip`` overrides the client's setting (None: keep it)."""
    if disable_geoip is None:
        return
    if disable_geoip:
        props["$geoip_disable"] = True
    else:
        props.pop("$geoip_disable", None)


def identify_from_context(
    ctx: otel_context.Context,
    resolved: Resolved | None,
    props: dict[str, Any],
    distinct_id: Any,
    groups: Mapping[str, str] | None,
) -> Any:
    """Add the context's identity, groups and trace ids to ``props``; return the distinct id.

    An explicit ``distinct_id`` wins over the scope's; ``posthog.*`` OTel baggage entries fill
    in what no scope set; existing ``$trace_id``/``$span_id`` properties are kept.
    """
    if resolved is not None:
        _identity.event_properties(resolved.ids, props)
        if distinct_id is None:
            distinct_id = resolved.distinct_id
    if groups:
        props["$groups"] = dict(groups)
    if distinct_id is None or _identity.SESSION_ID.event_property not in props:
        distinct_id = _baggage_fallback(ctx, distinct_id, props)
    span_context = trace.get_current_span(ctx).get_span_context()
    if span_context.is_valid:
        if "$trace_id" not in props:
            props["$trace_id"] = format(span_context.trace_id, "032x")
        if "$span_id" not in props:
            props["$span_id"] = format(span_context.span_id, "016x")
    return distinct_id


def _baggage_fallback(ctx: otel_context.Context, distinct_id: Any, props: dict[str, Any]) -> Any:
    """Honour ``posthog.*`` entries other code put in OTel baggage when no scope set them."""
    entries = otel_baggage.get_all(ctx)
    if not entries:
        return distinct_id
    if distinct_id is None:
        distinct_id = entries.get(_identity.DISTINCT_ID.attribute)
    ids = {
        field.name: value
        for field in _identity.FIELDS
        if isinstance(value := entries.get(field.attribute), str)
    }
    _identity.event_properties(ids, props)
    return distinct_id


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
        return str(uuid_module.uuid4())
    try:
        return str(value if isinstance(value, uuid_module.UUID) else uuid_module.UUID(str(value)))
    except ValueError:
        _logger.warning("invalid event uuid %r; a new one was generated", value)
        return str(uuid_module.uuid4())


def event_timestamp(value: Any) -> datetime | float:
    """A caller's timestamp (datetime or epoch seconds); anything else: the current time."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    _logger.warning("invalid timestamp %r; using the current time", value)
    return time.time()


def run_before_send(
    before_send: Callable[[dict[str, Any]], Any], message: dict[str, Any]
) -> dict[str, Any] | None:
    """The message ``before_send`` returns, or None when it drops it, raises or returns a
    non-dict (the event is then not sent)."""
    try:
        result = before_send(message)
    except Exception:
        _logger.warning("before_send raised; event %r dropped", message.get("event"), exc_info=True)
        return None
    if result is None:
        _logger.debug("before_send dropped event %r", message.get("event"))
        return None
    if not isinstance(result, dict):
        _logger.warning("before_send returned %s, not a dict; event dropped", type(result).__name__)
        return None
    return result
