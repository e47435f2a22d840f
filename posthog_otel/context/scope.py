"""PostHog v6 contexts, stored in the OpenTelemetry Context.

A :class:`Scope` holds the distinct id, session id, window id and tags of a unit of work (a
request, a task). The current scope lives inside the OpenTelemetry ``Context`` under a private
key, so it follows everything OpenTelemetry carries: threads started under contrib's
``ThreadingInstrumentor``, ``asyncio`` tasks, Celery tasks and, through
:class:`~posthog_otel.propagation.propagator.PosthogPropagator`, other services.

Usage::

    from .. import new_context, identify_context, set_context_session, tag, capture

    with new_context():
        identify_context("user-123")
        set_context_session(request.headers["X-POSTHOG-SESSION-ID"])
        tag("plan", "pro")
        capture("order_completed")      # carries the distinct id, session and tags

    @scoped(fresh=True)
    async def handle(job): ...

Semantics are posthog-python v6's: nested contexts inherit from their parent unless
``fresh=True``; child tags override parent tags inside the child; ``tag()`` mutates the current
scope so later code in the same scope sees it; outside any context the setters are no-ops; an
``Exception`` leaving a context is captured once (with the context's identity and tags) and
re-raised.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from opentelemetry import context as otel_context
from opentelemetry.trace.propagation import _SPAN_KEY

from . import _runtime

if TYPE_CHECKING:
    from ..client import Client

__all__ = [
    "Scope",
    "current_scope",
    "get_context_distinct_id",
    "get_context_session_id",
    "get_context_window_id",
    "get_tags",
    "identify_context",
    "new_context",
    "scoped",
    "set_context_session",
    "set_context_window_id",
    "tag",
]

_logger = logging.getLogger("posthog_otel")

_SCOPE_KEY = otel_context.create_key("posthog-otel-scope")
_get_current = _runtime.get_current
_attach = _runtime.attach

# Bumped in a forked child: scopes created before the fork are not visible in the child.
_generation = 0

# Called after identify_context/set_context_session/set_context_window_id/tag with
# (scope, field, key, value): field is "distinct_id", "session_id", "window_id" or "tag" (key is
# the tag's), or None when anything may have changed. The span processor installs a hook here
# to stamp late identity onto the current span.
ScopeHook = Callable[["Scope", "str | None", "str | None", Any], None]
_scope_changed_hooks: list[ScopeHook] = []

_F = TypeVar("_F", bound=Callable[..., Any])


class Resolved:
    """The effective state of a scope chain at one moment (parent values merged, child wins).

    Treat it as immutable: it is cached on the scope and shared by every reader until the
    scope or one of its ancestors changes.
    """

    __slots__ = ("distinct_id", "extra", "session_id", "stamp", "tags", "window_id")

    def __init__(
        self,
        stamp: int,
        distinct_id: str | None,
        session_id: str | None,
        window_id: str | None,
        tags: dict[str, Any],
    ) -> None:
        self.stamp = stamp
        self.distinct_id = distinct_id
        self.session_id = session_id
        self.window_id = window_id
        self.tags = tags
        # Derived views cached by other modules (span attributes, baggage), keyed by name.
        self.extra: dict[str, Any] = {}


class Scope:
    """One PostHog context: identity, session, window and tags, with a parent.

    Lookups walk up the parents unless the scope is ``fresh``. Create scopes with
    :data:`new_context` (this class) or :func:`scoped`; entering one makes it current in the
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
        "distinct_id",
        "fresh",
        "parent",
        "session_id",
        "tags",
        "window_id",
    )

    def __init__(
        self,
        fresh: bool = False,
        capture_exceptions: bool | None = None,
        client: Client | None = None,
        parent: Scope | None = None,
    ) -> None:
        self.fresh = fresh
        self.capture_exceptions = capture_exceptions
        self.client = client
        self.parent = None if fresh else parent
        self._outer = parent  # current when this scope was entered, even if fresh
        self.distinct_id: str | None = None
        self.session_id: str | None = None
        self.window_id: str | None = None
        self.tags: dict[str, Any] = {}
        # Equals the module's _generation while the scope is live; -1 once exited. A fork bumps
        # _generation, so scopes from before the fork are not visible in the child.
        self._epoch = _generation
        self._version = 0
        self._cache: Resolved | None = None
        self._token: Any = None
        self._attached: otel_context.Context | None = None

    def __repr__(self) -> str:
        return (
            f"Scope(distinct_id={self.distinct_id!r}, session_id={self.session_id!r}, "
            f"window_id={self.window_id!r}, tags={sorted(self.tags)!r}, fresh={self.fresh})"
        )

    # -- as a context manager (new_context) ----------------------------------------------

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
                _capture_leaving_exception(self, exc)
        finally:
            attached, self._attached = self._attached, None  # break the scope <-> Context cycle
            try:
                token.var.reset(token)
            except (AttributeError, ValueError, RuntimeError):  # another Context, or not ours
                if not _runtime.detach(token, attached):
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

    def __call__(self, fn: _F) -> _F:
        """Use ``@new_context(...)`` as a decorator: each call runs in its own context."""
        return scoped(self.fresh, self.capture_exceptions, _client=self.client)(fn)

    # -- mutation -------------------------------------------------------------------------

    def set_distinct_id(self, distinct_id: str | None) -> None:
        self.distinct_id = distinct_id
        self._version += 1

    def set_session_id(self, session_id: str | None) -> None:
        self.session_id = session_id
        self._version += 1

    def set_window_id(self, window_id: str | None) -> None:
        self.window_id = window_id
        self._version += 1

    def set_tag(self, key: str, value: Any) -> None:
        self.tags[key] = value
        self._version += 1

    def update_tags(self, tags: Mapping[str, Any]) -> None:
        self.tags.update(tags)
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
        """The effective identity, session, window and tags, cached until something changes."""
        stamp = self._version if self.parent is None else self._stamp()
        cached = self._cache
        if cached is not None and cached.stamp == stamp:
            return cached
        chain: list[Scope] = []
        node: Scope | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        distinct_id = session_id = window_id = None
        tags: dict[str, Any] = {}
        for link in reversed(chain):  # root first, so the child wins
            if link.distinct_id is not None:
                distinct_id = link.distinct_id
            if link.session_id is not None:
                session_id = link.session_id
            if link.window_id is not None:
                window_id = link.window_id
            if link.tags:
                tags.update(link.tags)
        resolved = Resolved(stamp, distinct_id, session_id, window_id, tags)
        self._cache = resolved
        return resolved

    def nearest_client(self) -> Client | None:
        node: Scope | None = self
        while node is not None:
            if node.client is not None:
                return node.client
            node = node.parent
        return None

    def wants_exception_capture(self) -> bool:
        if self.capture_exceptions is not None:
            return self.capture_exceptions
        client = self.nearest_client()
        if client is not None:
            return client.enable_exception_autocapture
        from .. import _default

        return _default.exception_autocapture_enabled()


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
    return _runtime.attach(ctx), ctx


def detach_scope(token: object, attached: otel_context.Context | None) -> bool:
    """Undo :func:`attach_scope` (also from another contextvars Context, quietly).

    Returns True when the reset applied cleanly; otherwise the caller should ``close()`` the
    scope so a Context still holding it no longer shows it.
    """
    return _runtime.detach(token, attached)


def notify_changed(scope: Scope) -> None:
    """Tell listeners (the span processor) that ``scope`` changed outside the setters."""
    if _scope_changed_hooks:
        _notify_changed(scope, None, None, None)


def _notify_changed(scope: Scope, field: str | None, key: str | None, value: Any) -> None:
    for hook in _scope_changed_hooks:
        try:
            hook(scope, field, key, value)
        except Exception:
            _logger.debug("posthog-otel scope hook failed", exc_info=True)


# -- public setters and getters -----------------------------------------------------------


def _current() -> Scope | None:
    scope: Scope | None = _get_current().get(_SCOPE_KEY)  # type: ignore[assignment]
    if scope is not None and (scope._epoch != _generation):
        return _live_outer(scope)
    return scope


def tag(key: str, value: Any) -> None:
    """Add a tag to the current context; every event captured in it carries the tag."""
    ctx = _get_current()
    scope: Scope | None = ctx.get(_SCOPE_KEY)  # type: ignore[assignment]
    if scope is not None and scope._epoch != _generation:
        scope = _live_outer(scope)
    if scope is not None:
        scope.tags[key] = value
        scope._version += 1
        if _scope_changed_hooks and _SPAN_KEY in ctx:  # late stamping needs a current span
            _notify_changed(scope, "tag", key, value)


def get_tags() -> dict[str, Any]:
    """A copy of the current context's tags, parents first, child values winning."""
    scope = _current()
    if scope is None:
        return {}
    return dict(scope.resolve().tags)


def identify_context(distinct_id: str) -> None:
    """Set the distinct id of the current context and its children."""
    ctx = _get_current()
    scope: Scope | None = ctx.get(_SCOPE_KEY)  # type: ignore[assignment]
    if scope is not None and scope._epoch != _generation:
        scope = _live_outer(scope)
    if scope is not None:
        scope.distinct_id = distinct_id
        scope._version += 1
        if _scope_changed_hooks and _SPAN_KEY in ctx:  # late stamping needs a current span
            _notify_changed(scope, "distinct_id", None, distinct_id)


def set_context_session(session_id: str) -> None:
    """Set the session id of the current context and its children."""
    ctx = _get_current()
    scope: Scope | None = ctx.get(_SCOPE_KEY)  # type: ignore[assignment]
    if scope is not None and scope._epoch != _generation:
        scope = _live_outer(scope)
    if scope is not None:
        scope.session_id = session_id
        scope._version += 1
        if _scope_changed_hooks and _SPAN_KEY in ctx:  # late stamping needs a current span
            _notify_changed(scope, "session_id", None, session_id)


def set_context_window_id(window_id: str) -> None:
    """Set the window id (posthog-js ``$window_id``) of the current context and its children."""
    ctx = _get_current()
    scope: Scope | None = ctx.get(_SCOPE_KEY)  # type: ignore[assignment]
    if scope is not None and scope._epoch != _generation:
        scope = _live_outer(scope)
    if scope is not None:
        scope.window_id = window_id
        scope._version += 1
        if _scope_changed_hooks and _SPAN_KEY in ctx:  # late stamping needs a current span
            _notify_changed(scope, "window_id", None, window_id)


def get_context_distinct_id() -> str | None:
    """The distinct id of the current context, inherited from parents unless fresh."""
    scope = _current()
    return None if scope is None else scope.resolve().distinct_id


def get_context_session_id() -> str | None:
    """The session id of the current context, inherited from parents unless fresh."""
    scope = _current()
    return None if scope is None else scope.resolve().session_id


def get_context_window_id() -> str | None:
    """The window id of the current context, inherited from parents unless fresh."""
    scope = _current()
    return None if scope is None else scope.resolve().window_id


# -- exception capture on exit ------------------------------------------------------------


def _capture_leaving_exception(scope: Scope, exc: BaseException) -> None:
    """Capture an Exception leaving ``scope`` (once per exception object). Never raises."""
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit, GeneratorExit, ...
        return
    try:
        from ..errors import is_captured

        if is_captured(exc) or not scope.wants_exception_capture():
            return
        client = scope.nearest_client()
        if client is None:
            from .. import _default

            client = _default.get_client()
        client.capture_exception(exc, handled=False)
    except Exception:
        _logger.debug(
            "posthog-otel could not capture an exception leaving a context", exc_info=True
        )


# -- new_context --------------------------------------------------------------------------


new_context = Scope
"""``new_context(fresh=False, capture_exceptions=None, client=None)``: a new :class:`Scope`.

Use it as a context manager (``with new_context() as scope:``) or a decorator. ``fresh=True``
starts empty instead of inheriting identity, session and tags. ``capture_exceptions``
(default: the client's ``enable_exception_autocapture``, on unless switched off) captures an
``Exception`` leaving the block, then re-raises it; ``client`` is used for that capture.
"""


# -- scoped -------------------------------------------------------------------------------


@overload
def scoped(fresh: _F) -> _F: ...


@overload
def scoped(
    fresh: bool = False,
    capture_exceptions: bool | None = None,
    *,
    _client: Client | None = None,
) -> Callable[[_F], _F]: ...


def scoped(
    fresh: Any = False,
    capture_exceptions: bool | None = None,
    *,
    _client: Client | None = None,
) -> Any:
    """Decorator: run each call of the function in a new PostHog context.

    Works on plain functions, coroutine functions, and sync and async generators. For
    generators the context is current only while the generator body runs (each step), never
    in the consumer's code between steps. Use as ``@scoped()``, ``@scoped(fresh=True)`` or
    bare ``@scoped``.
    """
    if callable(fresh):
        return scoped()(fresh)

    def decorate(fn: _F) -> _F:
        def make_scope() -> Scope:
            return Scope(bool(fresh), capture_exceptions, _client, current_scope())

        if inspect.isasyncgenfunction(fn):
            return cast(_F, _wrap_async_generator(fn, make_scope))
        if inspect.isgeneratorfunction(fn):
            return cast(_F, _wrap_generator(fn, make_scope))
        if inspect.iscoroutinefunction(fn):
            return cast(_F, _wrap_coroutine(fn, bool(fresh), capture_exceptions, _client))

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            with new_context(bool(fresh), capture_exceptions, _client):
                return fn(*args, **kwargs)

        return cast(_F, call)

    return decorate


def _wrap_coroutine(
    fn: Callable[..., Coroutine[Any, Any, Any]],
    fresh: bool,
    capture_exceptions: bool | None,
    client: Client | None,
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(fn)
    async def call(*args: Any, **kwargs: Any) -> Any:
        with new_context(fresh, capture_exceptions, client):
            return await fn(*args, **kwargs)

    return call


def _wrap_generator(
    fn: Callable[..., Generator[Any, Any, Any]], make_scope: Callable[[], Scope]
) -> Callable[..., Generator[Any, Any, Any]]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        return _step_generator(fn(*args, **kwargs), make_scope())

    return call


def _step_generator(gen: Generator[Any, Any, Any], scope: Scope) -> Generator[Any, Any, Any]:
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        token, attached = attach_scope(scope)
        try:
            item = gen.throw(to_throw) if to_throw is not None else gen.send(to_send)
        except StopIteration as stop:
            return stop.value
        except BaseException as exc:
            _capture_leaving_exception(scope, exc)
            raise
        finally:
            detach_scope(token, attached)
        try:
            to_send = yield item
            to_throw = None
        except GeneratorExit:
            token, attached = attach_scope(scope)
            try:
                gen.close()
            finally:
                detach_scope(token, attached)
            raise
        except BaseException as exc:  # thrown in by the consumer: forward it
            to_throw = exc


def _wrap_async_generator(
    fn: Callable[..., AsyncGenerator[Any, Any]], make_scope: Callable[[], Scope]
) -> Callable[..., AsyncGenerator[Any, Any]]:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        return _step_async_generator(fn(*args, **kwargs), make_scope())

    return call


async def _step_async_generator(
    gen: AsyncGenerator[Any, Any], scope: Scope
) -> AsyncGenerator[Any, Any]:
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        token, attached = attach_scope(scope)
        try:
            if to_throw is not None:
                item = await gen.athrow(to_throw)
            else:
                item = await gen.asend(to_send)
        except StopAsyncIteration:
            return
        except BaseException as exc:
            _capture_leaving_exception(scope, exc)
            raise
        finally:
            detach_scope(token, attached)
        try:
            to_send = yield item
            to_throw = None
        except GeneratorExit:
            token, attached = attach_scope(scope)
            try:
                await gen.aclose()
            finally:
                detach_scope(token, attached)
            raise
        except BaseException as exc:
            to_throw = exc


# -- fork ---------------------------------------------------------------------------------


def _forget_scopes_after_fork() -> None:
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_scopes_after_fork)
