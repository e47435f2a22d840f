"""PostHog contexts (v6 semantics) stored in the OpenTelemetry Context.

The lowest layer of the package with :mod:`posthog_otel._identity`: it imports nothing else
from the package. Higher layers (the client, the span processor) learn about changes through
:mod:`posthog_otel.context.observers`, never by being imported from here.

    from posthog_otel.context import new_context, identify_context, tag

    with new_context():
        identify_context("user-123")
        tag("plan", "pro")

Modules: ``scope`` (the Scope and where it lives), ``api`` (setters and getters),
``decorators`` (``new_context``/``scoped``), ``carry`` (running work in a captured context),
``observers`` (subscriptions), ``runtime`` (fast access to the current OTel Context and the
OpenTelemetry internals the package relies on).
"""

from __future__ import annotations

from .api import (
    get_context_device_id,
    get_context_distinct_id,
    get_context_session_id,
    get_context_window_id,
    get_tags,
    identify_context,
    notify_changed,
    set_context_device_id,
    set_context_session,
    set_context_window_id,
    tag,
)
from .carry import call_in_context, propagate_context
from .decorators import new_context, scoped
from .scope import (
    Resolved,
    Scope,
    attach_scope,
    context_with_scope,
    current_scope,
    detach_scope,
    live_scope,
    stored_scope,
    without_scope,
)

__all__ = [
    "Resolved",
    "Scope",
    "attach_scope",
    "call_in_context",
    "context_with_scope",
    "current_scope",
    "detach_scope",
    "get_context_device_id",
    "get_context_distinct_id",
    "get_context_session_id",
    "get_context_window_id",
    "get_tags",
    "identify_context",
    "live_scope",
    "new_context",
    "notify_changed",
    "propagate_context",
    "scoped",
    "set_context_device_id",
    "set_context_session",
    "set_context_window_id",
    "stored_scope",
    "tag",
    "without_scope",
]
