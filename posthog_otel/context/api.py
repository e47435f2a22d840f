"""The module-level context functions of posthog-python v6: setters and getters.

    from posthog_otel import new_context, identify_context, set_context_session, tag

    with new_context():
        identify_context("user-123")
        set_context_session(request.headers["X-POSTHOG-SESSION-ID"])
        tag("plan", "pro")
        get_tags()                      # {"plan": "pro"}

Semantics are posthog-python v6's: outside any context the setters are no-ops; ``tag()``
mutates the current scope so later code in the same scope sees it; getters see parents'
values unless the context is fresh. After a change, while a span is current,
:func:`~posthog_otel.context.observers.on_change` observers run (late span stamping).
"""

from __future__ import annotations

from typing import Any

from .._identity import DEVICE_ID, DISTINCT_ID, SESSION_ID, WINDOW_ID
from . import observers, runtime
from .scope import Scope, field_setter, live_scope, tag_current

__all__ = [
    "get_context_device_id",
    "get_context_distinct_id",
    "get_context_session_id",
    "get_context_window_id",
    "get_tags",
    "identify_context",
    "notify_changed",
    "set_context_device_id",
    "set_context_session",
    "set_context_window_id",
    "tag",
]

_get_current = runtime.get_current


def notify_changed(scope: Scope) -> None:
    """Tell observers (late span stamping) that ``scope`` changed outside the setters."""
    if observers.has_change_observers():
        observers.notify_change(scope, None, None, None)


tag = tag_current
"""``tag(key, value)``: add a tag to the current context; every event captured in it carries it."""


def get_tags() -> dict[str, Any]:
    """A copy of the current context's tags, parents first, child values winning."""
    scope = live_scope(_get_current())
    if scope is None:
        return {}
    return dict(scope.resolve().tags)


_set_distinct_id = field_setter(DISTINCT_ID.name)
_set_session_id = field_setter(SESSION_ID.name)
_set_window_id = field_setter(WINDOW_ID.name)
_set_device_id = field_setter(DEVICE_ID.name)


def _get(name: str) -> str | None:
    scope = live_scope(_get_current())
    return None if scope is None else scope.resolve().ids.get(name)


def identify_context(distinct_id: str) -> None:
    """Set the distinct id of the current context and its children."""
    _set_distinct_id(distinct_id)


def set_context_session(session_id: str) -> None:
    """Set the session id of the current context and its children."""
    _set_session_id(session_id)


def set_context_window_id(window_id: str) -> None:
    """Set the window id (posthog-js ``$window_id``) of the current context and its children."""
    _set_window_id(window_id)


def set_context_device_id(device_id: str) -> None:
    """Set the device id (posthog-js ``$device_id``) of the current context and its children."""
    _set_device_id(device_id)


def get_context_distinct_id() -> str | None:
    """The distinct id of the current context, inherited from parents unless fresh."""
    return _get(DISTINCT_ID.name)


def get_context_session_id() -> str | None:
    """The session id of the current context, inherited from parents unless fresh."""
    return _get(SESSION_ID.name)


def get_context_window_id() -> str | None:
    """The window id of the current context, inherited from parents unless fresh."""
    return _get(WINDOW_ID.name)


def get_context_device_id() -> str | None:
    """The device id of the current context, inherited from parents unless fresh."""
    return _get(DEVICE_ID.name)
