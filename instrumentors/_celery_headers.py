"""The PostHog context in Celery task headers: written by the producer, read by the worker.

Private to :mod:`posthog_otel.instrumentors.celery` (whose docstring describes the headers).
Both posthog-otel's ``posthog.*`` baggage members and posthog-python's ``X-POSTHOG-*``
headers are written; on read, the baggage members win.

Usage::

    from ._celery_headers import inbound_state, write_headers

    write_headers(message_headers)          # producer: the current context into the message
    inbound = inbound_state(task.request)   # worker: the producer's distinct id, session, tags
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import trace

from posthog_otel import context as contexts
from posthog_otel._identity import FIELDS
from posthog_otel.context import runtime as _runtime
from posthog_otel.delivery.encoding import json_safe
from posthog_otel.propagation.baggage import (
    MAX_INBOUND_TAGS,
    Inbound,
    parse_header,
    sanitize_header_value,
)
from posthog_otel.propagation.destination import INTERNAL_DESTINATION, with_destination
from posthog_otel.propagation.propagator import (
    BAGGAGE_HEADER,
    DISTINCT_ID_HEADER,
    SESSION_ID_HEADER,
    PosthogPropagator,
    default_propagator,
    find_posthog_propagator,
)

__all__ = ["CONTEXT_TAGS_HEADER", "inbound_state", "write_headers"]

_logger = logging.getLogger("posthog.otel")

CONTEXT_TAGS_HEADER = "X-POSTHOG-CONTEXT-TAGS"
_NESTED = "headers"  # protocol 2: custom headers that reach ``task.request.headers``
_MAX_TAGS_JSON = 64 * 1024


# -- producer -----------------------------------------------------------------------------


def write_headers(headers: MutableMapping[str, Any]) -> None:
    current = _runtime.get_current()
    # The destination of a message is the broker: internal by configuration, whatever span
    # is current (no span may make this look like an HTTP call to a non-target host).
    ctx = with_destination(
        INTERNAL_DESTINATION, trace.set_span_in_context(trace.INVALID_SPAN, current)
    )
    propagator = _propagator()
    propagator.inject(headers, ctx)  # posthog.* baggage members + X-POSTHOG-* (ASCII) headers

    scope = contexts.current_scope(current)
    if scope is None:
        return
    state = scope.resolve()
    extra: dict[str, str] = {}
    distinct_id = sanitize_header_value(state.distinct_id)
    session_id = sanitize_header_value(state.session_id)
    if distinct_id:
        extra[DISTINCT_ID_HEADER] = distinct_id
    if session_id:
        extra[SESSION_ID_HEADER] = session_id
    tags = propagator.propagated_tags(state.tags) if state.tags else {}
    if tags:
        text = json.dumps(json_safe(tags), ensure_ascii=False, separators=(",", ":"))
        if len(text) <= _MAX_TAGS_JSON:
            extra[CONTEXT_TAGS_HEADER] = text
        else:
            _logger.debug("posthog-otel: task context tags over %d bytes not sent", _MAX_TAGS_JSON)
    if not extra:
        return
    headers.update(extra)
    nested = headers.get(_NESTED)
    if nested is None:
        nested = headers[_NESTED] = {}
    if isinstance(nested, MutableMapping):
        nested.update(extra)


# -- worker -------------------------------------------------------------------------------


def _header(request: Any, nested: Mapping[str, Any], name: str) -> Any:
    value = getattr(request, name, None)
    if value is None:
        value = getattr(request, name.lower(), None)
    if value is None:
        value = nested.get(name)
        if value is None:
            value = nested.get(name.lower())
    return value


def _json_tags(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", "replace")
    if not isinstance(raw, str) or not raw or len(raw) > _MAX_TAGS_JSON:
        return {}
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(parsed, dict):
        return {}
    tags: dict[str, Any] = {}
    for key, value in parsed.items():
        if isinstance(key, str) and key and len(tags) < MAX_INBOUND_TAGS:
            tags[key] = value
    return tags


def inbound_state(request: Any) -> Inbound:
    """The producer's PostHog state from a task request (``posthog.*`` baggage wins)."""
    nested_raw = getattr(request, _NESTED, None)
    nested: Mapping[str, Any] = nested_raw if isinstance(nested_raw, Mapping) else {}
    baggage = _header(request, nested, BAGGAGE_HEADER)
    inbound = parse_header(baggage) if baggage else Inbound()
    for field in FIELDS:
        if field.name not in inbound.ids:
            inbound.set_id(field.name, _header(request, nested, field.header))
    json_tags = _json_tags(_header(request, nested, CONTEXT_TAGS_HEADER))
    if json_tags:
        inbound.tags = {**json_tags, **inbound.tags}
    if inbound.tags:  # "$" keys and exclude_tags: the propagator's inbound rule
        inbound.tags = _propagator().inbound_tags(inbound.tags)
    return inbound


def _propagator() -> PosthogPropagator:
    from opentelemetry import propagate

    return find_posthog_propagator(propagate.get_global_textmap()) or default_propagator()
