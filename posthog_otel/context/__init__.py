"""PostHog contexts (v6 semantics) stored in the OpenTelemetry Context.

The lowest layer of the package: it imports only :mod:`posthog_otel._identity` and
OpenTelemetry. Higher layers (the client, the span processor) learn about changes through
the observer API in :mod:`posthog_otel.context.observers`, never by being imported from here.

    from posthog_otel.context import new_context, identify_context, tag

    with new_context():
        identify_context("user-123")
        tag("plan", "pro")
"""

from __future__ import annotations

from .carry import call_in_context, propagate_context
from .scope import (
    Scope,
    current_scope,
    get_context_distinct_id,
    get_context_session_id,
    get_context_window_id,
    get_tags,
    identify_context,
    new_context,
    scoped,
    set_context_session,
    set_context_window_id,
    tag,
)

__all__ = [
    "Scope",
    "call_in_context",
    "current_scope",
    "get_context_distinct_id",
    "get_context_session_id",
    "get_context_window_id",
    "get_tags",
    "identify_context",
    "new_context",
    "propagate_context",
    "scoped",
    "set_context_session",
    "set_context_window_id",
    "tag",
]
