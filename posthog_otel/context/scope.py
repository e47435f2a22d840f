"""The :class:`Scope` object and where it lives: inside the OpenTelemetry Context.

A :class:`Scope` holds the identity values (distinct id, session id, window id, device id;
see :mod:`posthog_otel._identity`) and tags of a unit of work (a request, a task). The current
scope lives inside the OpenTelemetry ``Context`` under a private key, so it follows everything
OpenTelemetry carries: threads started under contrib's ``ThreadingInstrumentor``, ``asyncio``
tasks, Celery tasks and, through the propagator, other services.

    with Scope() as scope:             # new_context() is this class
        scope.set_id("distinct_id", "user-1")
        current_scope() is scope       # True
        scope.resolve().distinct_id    # "user-1" (parents merged, child wins)

Lookups walk the parents unless the scope is ``fresh``. Leaving a scope restores the previous
Context, also when it is left from another ``contextvars.Context`` (async generators,
streaming responses). Exceptions leaving it are announced to
:func:`~posthog_otel.context.observers.on_exit_exception` observers (the client captures them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context

from .._identity import DISTINCT_ID, SESSION_ID
from . import observers, runtime

__all__ = [
    "Resolved",
    "Scope",
    "attach_scope",
    "context_with_scope",
    "current_scope",
    "detach_scope",
    "field_setter",
    "live_scope",
    "stored_scope",
    "tag_current",
    "without_scope",
]

_SCOPE_KEY = otel_context.create_key("posthog-otel-scope")
_get_current = runtime.get_current
_SPAN_IN_CONTEXT = runtime.SPAN_KEY
_attach = runtime.attach
_DISTINCT = DISTINCT_ID.name
_SESSION = SESSION_ID.name

# Bumped in a forked child: scopes created before the fork are not visible in the child.
_generation = 0


class Resolved:
    """The effective state of a scope chain at one moment (parent values merged, child wins).

    Treat it as immutable: it is cached on the scope and shared by every reader until the
    scope or one of its ancestors changes. ``ids`` maps identity field names to values;
    ``distinct_id`` and ``session_id`` are also attributes, as the hot paths read them.
    """

    __slots__ = ("distinct_id", "extra", "ids", "session_id", "stamp", "tags")

    def __init__(self, stamp: int, ids: dict[str, str], tags: dict[str, Any]) -> None:
        self.stamp = stamp
        self.ids = ids
        self.distinct_id = ids.get(_DISTINCT)
        self.session_id = ids.get(_SESSION)
        self.tags = tags
        # Derived views cached by other modules (span attributes, baggage), keyed by name.
        self.extra: dict[str, Any] = {}

    def get(self, name: str) -> str | None:
        """The value of identity field ``name`` (``"window_id"``, ...), or None."""
        return self.ids.get(name)


class _IdAttribute:
    """``scope.distinct_id`` and friends: read and write one identity field of a scope."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, scope: Scope | None, owner: type[Scope]) -> Any:
        if scope is None:
            return self
        return scope.ids.get(self.name)

    def __set__(self, scope: Scope, value: Any) -> None:
        scope.set_id(self.name, value)


class Scope:
    """One PostHog context: identity values and tags, with a parent.

    Lookups walk up the parents unless the scope is ``fresh``. Create scopes with
    :data:`new_context` (this class) or ``scoped``; entering one makes it current in the
    OpenTelemetry Context, with the scope that was current as its parent. The module-level
    setters change the current scope.
    """

    __slots__ = (
        "_attached",
        "_cache",
        "_epoch",
        "_outer",
        "_token",
        "_version",
        "capture_exceptions",
        "client",
        "companion",
        "fresh",
        "ids",
        "parent",
        "tags",
    )

    distinct_id = _IdAttribute("distinct_id")
    session_id = _IdAttribute("session_id")
    window_id = _IdAttribute("window_id")
    device_id = _IdAttribute("device_id")

    def __init__(
        self,
        fresh: bool = False,
        capture_exceptions: bool | None = None,
        client: Any = None,
        parent: Scope | None = None,
    ) -> None:
        self.fresh = fresh
        self.capture_exceptions = capture_exceptions
        # The client that captures exceptions leaving this scope (None: the default one).
        self.client = client
        # What another context API keeps with this scope (posthog-python's view of it).
        self.companion: Any = None
        self.parent = None if fresh else parent
        self._outer = parent  # current when this scope was entered, even if fresh
        self.ids: dict[str, str] = {}
        self.tags: dict[str, Any] = {}
        # Equals the module's _generation while the scope is live; -1 once exited. A fork bumps
        # _generation, so scopes from before the fork are not visible in the child.
        self._epoch = _generation
        self._version = 0
        self._cache: Resolved | None = None
        self._token: Any = None
        self._attached: otel_context.Context | None = None

    def __repr__(self) -> str:
        return f"Scope(ids={self.ids!r}, tags={sorted(self.tags)!r}, fresh={self.fresh})"

    # -- as a context manager (new_context) ----------------------------------------------

    @property
    def entered(self) -> bool:
        """True while the scope is entered as a context manager."""
        return self._token is not None

    def __enter__(self) -> Scope:
        if self._token is not None or self._epoch == -1:
            raise RuntimeError("a context cannot be entered twice; call new_context() again")
        ctx = _get_current()
        outer: Scope | None = ctx.get(_SCOPE_KEY)  # type: ignore[assignment]
        if outer is not None and outer._epoch != _generation:
            outer = _live_outer(outer)
        self._outer = outer
        if not self.fresh:
            self.parent = outer
        attached = otel_context.Context(ctx)
        dict.__setitem__(attached, _SCOPE_KEY, self)  # a fresh copy, not yet shared
        self._attached = attached
        self._token = _attach(attached)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token = self._token
        if token is None:
            return
        self._token = None
        try:
            if exc is not None:
                observers.notify_exit_exception(self, exc)
        finally:
            attached, self._attached = self._attached, None  # break the scope <-> Context cycle
            try:
                token.var.reset(token)
            except (AttributeError, ValueError, RuntimeError):  # another Context, or not ours
                if not runtime.detach(token, attached):
                    # The Context we were entered in may still show this scope: close it so
                    # readers there skip it. After a clean exit the scope stays readable for
                    # work it started that outlives it (threads, tasks), as in posthog-python.
                    self._epoch = -1

    def close(self) -> None:
        """Mark the scope exited: readers that still find it in some Context skip it.

        Only for scopes that could not be detached cleanly; a cleanly exited scope stays
        readable by the threads and tasks it started.
        """
        self._epoch = -1

    # -- mutation -------------------------------------------------------------------------

    def set_id(self, name: str, value: str | None) -> None:
        """Set (or with None, clear) identity field ``name`` of this scope."""
        if value is None:
            self.ids.pop(name, None)
        else:
            self.ids[name] = value
        self._version += 1

    def set_distinct_id(self, distinct_id: str | None) -> None:
        self.set_id(_DISTINCT, distinct_id)

    def set_session_id(self, session_id: str | None) -> None:
        self.set_id(_SESSION, session_id)

    def set_window_id(self, window_id: str | None) -> None:
        self.set_id("window_id", window_id)

    def set_device_id(self, device_id: str | None) -> None:
        self.set_id("device_id", device_id)

    def set_tag(self, key: str, value: Any) -> None:
        self.tags[key] = value
        self._version += 1

    def update_tags(self, tags: Mapping[str, Any]) -> None:
        self.tags.update(tags)
        self._version += 1

    def update_ids(self, ids: Mapping[str, str | None]) -> None:
        """Set several identity fields at once (None values are skipped)."""
        for name, value in ids.items():
            if value is not None:
                self.ids[name] = value
        self._version += 1

    # -- lookup ---------------------------------------------------------------------------

    def _stamp(self) -> int:
        # Versions only grow, so their sum over the chain changes whenever any link changes.
        stamp = self._version
        parent = self.parent
        while parent is not None:
            stamp += parent._version
            parent = parent.parent
        return stamp

    def resolve(self) -> Resolved:
        """The effective identity values and tags, cached until something changes."""
        stamp = self._version if self.parent is None else self._stamp()
        cached = self._cache
        if cached is not None and cached.stamp == stamp:
            return cached
        chain: list[Scope] = []
        node: Scope | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        ids: dict[str, str] = {}
        tags: dict[str, Any] = {}
        for link in reversed(chain):  # root first, so the child wins
            if link.ids:
                ids.update(link.ids)
            if link.tags:
                tags.update(link.tags)
        resolved = Resolved(stamp, ids, tags)
        self._cache = resolved
        return resolved

    def nearest_client(self) -> Any:
        """The client given to this scope or the nearest parent that has one (or None)."""
        node: Scope | None = self
        while node is not None:
            if node.client is not None:
                return node.client
            node = node.parent
        return None


# -- reading the current scope ------------------------------------------------------------


def current_scope(context: otel_context.Context | None = None) -> Scope | None:
    """The PostHog scope in ``context`` (default: the current OpenTelemetry Context)."""
    ctx = _get_current() if context is None else context
    scope: Scope | None = ctx.get(_SCOPE_KEY)  # type: ignore[assignment]
    if scope is not None and (scope._epoch != _generation):
        return _live_outer(scope)
    return scope


def _live_outer(scope: Scope | None) -> Scope | None:
    """The nearest enclosing scope still open in this process (a stale one was left current).

    A context manager exited from another contextvars Context (an async generator closed by
    another task) cannot reset the Context it was entered in; its scope is closed instead, and
    readers skip it.
    """
    while scope is not None and (scope._epoch != _generation):
        scope = scope._outer
    return scope


def context_with_scope(
    scope: Scope, context: otel_context.Context | None = None
) -> otel_context.Context:
    """A copy of ``context`` (default: current) in which ``scope`` is the current scope."""
    ctx = _get_current() if context is None else context
    new = otel_context.Context(ctx)
    dict.__setitem__(new, _SCOPE_KEY, scope)  # a fresh copy, not yet shared
    return new


def attach_scope(scope: Scope) -> tuple[object, otel_context.Context]:
    """Make ``scope`` current; returns what :func:`detach_scope` needs to undo it."""
    ctx = context_with_scope(scope)
    return runtime.attach(ctx), ctx


def detach_scope(token: object, attached: otel_context.Context | None) -> bool:
    """Undo :func:`attach_scope` (also from another contextvars Context, quietly).

    Returns True when the reset applied cleanly; otherwise the caller should ``close()`` the
    scope so a Context still holding it no longer shows it.
    """
    return runtime.detach(token, attached)


def stored_scope(context: otel_context.Context) -> Scope | None:
    """The scope stored in ``context`` as is, even one exited elsewhere (no liveness check)."""
    return context.get(_SCOPE_KEY)  # type: ignore[return-value]


def live_scope(context: otel_context.Context) -> Scope | None:
    """Like :func:`current_scope` for a given Context (skips scopes exited elsewhere)."""
    scope: Scope | None = context.get(_SCOPE_KEY)  # type: ignore[assignment]
    if scope is not None and scope._epoch != _generation:
        return _live_outer(scope)
    return scope


def without_scope(context: otel_context.Context) -> otel_context.Context:
    """``context`` without a PostHog scope (itself when it holds none)."""
    if _SCOPE_KEY not in context:
        return context
    return otel_context.Context({k: v for k, v in context.items() if k != _SCOPE_KEY})


# -- changing the current scope (the setters in .api run these on every call) -------------


def field_setter(name: str) -> Callable[[Any], None]:
    """A setter of identity field ``name`` on the current scope; a no-op outside any.

    Inlined (no nested calls) because apps call it on every request; observers hear about
    the change when a span is current (late stamping).
    """

    def set_current(value: Any) -> None:
        ctx = _get_current()
        scope: Scope | None = ctx.get(_SCOPE_KEY)  # type: ignore[assignment]
        if scope is not None and scope._epoch != _generation:
            scope = _live_outer(scope)
        if scope is None:
            return
        if value is None:
            scope.ids.pop(name, None)
        else:
            scope.ids[name] = value
        scope._version += 1
        if _SPAN_IN_CONTEXT in ctx and observers.has_change_observers():
            observers.notify_change(scope, name, None, value)

    return set_current


def tag_current(name: str, value: Any) -> None:
    """Set tag ``name`` on the current scope; a no-op outside any."""
    ctx = _get_current()
    scope: Scope | None = ctx.get(_SCOPE_KEY)  # type: ignore[assignment]
    if scope is not None and scope._epoch != _generation:
        scope = _live_outer(scope)
    if scope is None:
        return
    scope.tags[name] = value
    scope._version += 1
    if _SPAN_IN_CONTEXT in ctx and observers.has_change_observers():
        observers.notify_change(scope, "tag", name, value)


# -- fork ---------------------------------------------------------------------------------


def _forget_scopes_after_fork() -> None:
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_scopes_after_fork)
