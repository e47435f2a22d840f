"""posthog-python's context stack, kept in the OpenTelemetry Context as posthog-otel scopes.

posthog-python (6.0 and later) keeps its current context in one ``ContextVar``,
``posthog.contexts._context_stack``: ``new_context`` sets it to a new ``ContextScope`` on entry
and back to that scope's parent on exit, and every reader and setter goes through its
``get()``. :class:`ContextStack` is a ``wrapt.ObjectProxy`` put in that variable's place:

- ``get()`` answers the current posthog-otel :class:`~posthog_otel.context.Scope` seen through
  a ``ContextScope`` view (:func:`view_of`), so posthog-python reads and writes the one scope
  that posthog-otel's API, spans, propagation and instrumentors use;
- ``set(new ContextScope)`` (entering ``new_context``) enters a posthog-otel scope with the same
  ``fresh`` and ``client``; ``set(parent)`` (leaving it) leaves that scope.

    stack = ContextStack(posthog.contexts._context_stack, posthog.contexts)
    posthog.contexts._context_stack = stack          # install
    posthog.contexts._context_stack = stack.__wrapped__   # restore

Exceptions leaving a ``new_context`` stay posthog-python's to capture (its ``capture_exceptions``
rules); the posthog-otel scope is left without announcing them, so nothing is captured twice.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

import wrapt

from posthog_otel.context import (
    Scope,
    context_with_scope,
    current_scope,
    notify_changed,
    runtime,
    without_scope,
)

__all__ = ["ContextStack", "view_of"]

_logger = logging.getLogger("posthog.otel")

_ID_FIELDS = ("distinct_id", "session_id", "device_id")
# Per-context settings of newer posthog-python versions (code variables): unset means None.
_SETTING_PREFIXES = ("capture_exception_code_variables", "code_variables_")

_view_classes: dict[Any, Any] = {}


def _view_class(base: Any) -> Any:
    """A subclass of posthog-python's ``ContextScope`` whose state is a posthog-otel scope."""
    cls = _view_classes.get(base)
    if cls is not None:
        return cls

    def _id_property(name: str) -> property:
        def get(self: Any) -> Any:
            return self.scope.ids.get(name)

        def set_(self: Any, value: Any) -> None:
            self.scope.set_id(name, value)
            notify_changed(self.scope)

        return property(get, set_)

    class ScopeView(base):  # type: ignore[misc]
        """posthog-python's ``ContextScope`` interface over one posthog-otel scope."""

        scope: Scope
        module: ModuleType
        origin: Any

        def __init__(self, scope: Scope, module: ModuleType) -> None:
            # base.__init__ is not called: every attribute it sets is the scope's here.
            self.__dict__["scope"] = scope
            self.__dict__["module"] = module
            self.__dict__["origin"] = None  # the ContextScope whose new_context entered it
            self.__dict__["_span_context_active"] = True
            # posthog-python skips contexts of an older generation (before a fork); posthog-otel
            # never shows a pre-fork scope, so every view is of the generation it was made in.
            self.__dict__["_generation"] = getattr(module, "_context_generation", 0)

        def __getattr__(self, name: str) -> Any:
            if name.startswith(_SETTING_PREFIXES):
                return None
            raise AttributeError(name)

        distinct_id = _id_property("distinct_id")
        session_id = _id_property("session_id")
        device_id = _id_property("device_id")

        @property
        def parent(self) -> Any:
            parent = self.scope.parent
            return None if parent is None else view_of(parent, self.module)

        @parent.setter
        def parent(self, value: Any) -> None:
            pass

        @property
        def fresh(self) -> bool:
            return bool(self.scope.fresh)

        @fresh.setter
        def fresh(self, value: Any) -> None:
            pass

        @property
        def client(self) -> Any:
            return self.scope.client

        @client.setter
        def client(self, value: Any) -> None:
            self.scope.client = value

        @property
        def capture_exceptions(self) -> bool:
            return bool(self.scope.capture_exceptions)

        @capture_exceptions.setter
        def capture_exceptions(self, value: Any) -> None:
            self.scope.capture_exceptions = value

        @property
        def tags(self) -> dict[str, Any]:
            tags: dict[str, Any] = self.scope.tags
            return tags

        @tags.setter
        def tags(self, value: Any) -> None:
            self.scope.tags.clear()
            self.scope.update_tags(value or {})
            notify_changed(self.scope)

        def add_tag(self, key: str, value: Any) -> None:
            self.scope.set_tag(key, value)
            notify_changed(self.scope)

        def set_distinct_id(self, distinct_id: str) -> None:
            self.distinct_id = distinct_id

        def set_session_id(self, session_id: str) -> None:
            self.session_id = session_id

        def set_device_id(self, device_id: str) -> None:
            self.device_id = device_id

        def get_parent(self) -> Any:
            return self.parent

        def get_distinct_id(self) -> str | None:
            value: str | None = self.scope.resolve().ids.get("distinct_id")
            return value

        def get_session_id(self) -> str | None:
            value: str | None = self.scope.resolve().ids.get("session_id")
            return value

        def get_device_id(self) -> str | None:
            value: str | None = self.scope.resolve().ids.get("device_id")
            return value

        def collect_tags(self) -> dict[str, Any]:
            return dict(self.scope.resolve().tags)

        def __repr__(self) -> str:
            return f"<posthog-python view of {self.scope!r}>"

    ScopeView.__name__ = ScopeView.__qualname__ = "ScopeView"
    _view_classes[base] = ScopeView
    return ScopeView


def view_of(scope: Scope, module: ModuleType) -> Any:
    """posthog-python's view of ``scope`` (one per scope, kept as its ``companion``)."""
    view = scope.companion
    cls = _view_class(module.ContextScope)
    if type(view) is not cls:
        view = cls(scope, module)
        scope.companion = view
    return view


class ContextStack(wrapt.ObjectProxy[Any]):
    """Stands in for ``posthog.contexts._context_stack``; see the module docstring."""

    def __init__(self, wrapped: Any, module: ModuleType) -> None:
        super().__init__(wrapped)
        self._self_module = module
        self._self_view_class = _view_class(module.ContextScope)

    def get(self, *default: Any) -> Any:
        # Every posthog-python read and setter passes here: the common case stays inline.
        try:
            scope = current_scope()
            if scope is None:
                return None
            view = scope.companion
            if type(view) is self._self_view_class:
                return view
            return view_of(scope, self._self_module)
        except Exception:
            _logger.debug("posthog-otel could not read the context", exc_info=True)
            return None

    def set(self, value: Any) -> None:
        try:
            _set(value, self._self_module)
        except Exception:
            _logger.warning("posthog-otel could not change the context", exc_info=True)

    def reset(self, token: Any) -> None:
        """Tokens are never handed out (``set`` returns None); nothing to undo."""


def _set(value: Any, module: ModuleType) -> None:
    view_cls = _view_class(module.ContextScope)
    current = current_scope()
    view: Any = current.companion if current is not None else None
    origin = view.origin if type(view) is view_cls else None
    if current is not None and origin is not None and value is origin.parent:  # leaving
        view.__dict__["_span_context_active"] = False
        view.__dict__["origin"] = None
        current.__exit__(None, None, None)
        return
    if value is None:  # after a fork, posthog-python clears its context
        if current is not None:
            runtime.attach(without_scope(runtime.get_current()))
        return
    if type(value) is view_cls:  # someone set a known context current
        runtime.attach(context_with_scope(value.scope))
        return
    _enter(value, module)


def _enter(value: Any, module: ModuleType) -> None:
    """``new_context`` is entering with ``value``, a new posthog-python ``ContextScope``."""
    scope = Scope(fresh=bool(getattr(value, "fresh", False)), client=getattr(value, "client", None))
    ids = {name: getattr(value, name, None) for name in _ID_FIELDS}
    if any(v is not None for v in ids.values()):
        scope.update_ids(ids)
    tags = getattr(value, "tags", None)
    if tags:
        scope.update_tags(tags)
    scope.__enter__()
    view_of(scope, module).__dict__["origin"] = value
