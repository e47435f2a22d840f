"""posthog-python on OpenTelemetry: one context, trace ids on its events, one delivery path.

Usage::

    import posthog                                  # posthog-python, app code unchanged
    from posthog_otel import PosthogInstrumentor

    posthog.api_key = "phc_..."
    PosthogInstrumentor().instrument()              # enables this one when posthog is installed

or, to route posthog-otel's events through a client you built yourself::

    from posthog_otel.instrumentors.posthog_python import PosthogPythonInstrumentor

    PosthogPythonInstrumentor().instrument(client=my_posthog_python_client)
    PosthogInstrumentor().instrument()              # leaves the one above as it is

(entry point ``posthog_python``; ``opentelemetry-instrument`` enables it too). What it does,
posthog-python 6.0 or later:

- **One context.** posthog-python's context (``posthog.new_context``, ``scoped``, ``tag``,
  ``identify_context``, ``set_context_session``, ``set_context_device_id``, ``get_tags``, the
  ``Client`` methods of the same names and the Django middleware and Celery integration built
  on them) is posthog-otel's scope in the OpenTelemetry Context: what one sets the other reads,
  it follows threads, asyncio tasks and Celery through OpenTelemetry, spans are stamped from
  it and it propagates with the egress policy. The seam is posthog-python's one context
  variable, ``posthog.contexts._context_stack`` (see :mod:`._posthog_python_context`).
- **Trace ids.** Events captured through posthog-python's client carry ``$trace_id`` and
  ``$span_id`` of the active span (values the caller passed win). The seam is
  ``posthog.client.add_context_tags``, which adds the context to every event it captures.
- **One ``$exception`` per exception.** posthog-python's mark (``__posthog_exception_captured``)
  and posthog-otel's count as one: whichever captures an exception first, the other skips it.
- **One delivery path.** When posthog-python has a client (``client=``, ``posthog.default_client``,
  or ``posthog.api_key``/``project_api_key`` set, from which posthog-python builds it),
  posthog-otel's span and exception events go out through it (its queue, ``before_send`` and
  options; exception autocapture follows its ``enable_exception_autocapture``); otherwise
  posthog-otel's own client sends them. ``route_events=False`` keeps posthog-otel's client.

``uninstrument()`` puts back every posthog-python attribute it replaced and the default client
it replaced. Every hook guards itself: a failure is logged and posthog-python carries on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from types import ModuleType
from typing import Any

import wrapt

from posthog_otel import global_client
from posthog_otel.client import Client
from posthog_otel.context import runtime
from posthog_otel.errors import is_captured, mark_captured

from ._base import ImportHooks, PosthogLibraryInstrumentor
from ._outbound import find_wrapper
from ._posthog_python_context import ContextStack
from ._posthog_python_delivery import PosthogPythonTransport

__all__ = ["PosthogPythonInstrumentor"]

_logger = logging.getLogger("posthog.otel")

# The contrib convention: the library versions this instrumentor supports (and is tested with).
_INSTRUMENTS = ("posthog >= 6.0, < 8",)
_STACK = "_context_stack"  # posthog.contexts' one context variable, the same since 6.0


class _State:
    def __init__(self) -> None:
        self.active = False
        self.contexts: ModuleType | None = None
        self.stack: ContextStack | None = None
        self.routed: Client | None = None  # the default client we installed
        self.previous: Client | None = None  # the default client before it


_state = _State()


# -- trace ids and exception marks (wrappers of posthog.client module functions) -----------


def _add_context_tags(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    properties = wrapped(*args, **kwargs)
    if not _state.active:
        return properties
    try:
        span: Any = runtime.get_current().get(runtime.SPAN_KEY)
        if span is None:
            return properties
        span_context = span.get_span_context()
        if span_context.is_valid and isinstance(properties, dict):
            if "$trace_id" not in properties:
                properties["$trace_id"] = format(span_context.trace_id, "032x")
            if "$span_id" not in properties:
                properties["$span_id"] = format(span_context.span_id, "016x")
    except Exception:
        _logger.debug("posthog-otel could not add trace ids to an event", exc_info=True)
    return properties


def _exception_of(error: Any) -> BaseException | None:
    if isinstance(error, BaseException):
        return error
    if isinstance(error, tuple) and len(error) > 1 and isinstance(error[1], BaseException):
        return error[1]
    return None


def _already_captured(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if wrapped(*args, **kwargs):
        return True
    if not _state.active:
        return False
    exc = _exception_of(args[0] if args else kwargs.get("error"))
    return exc is not None and is_captured(exc)


def _mark_captured(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    result = wrapped(*args, **kwargs)
    if _state.active:
        exc = _exception_of(args[0] if args else kwargs.get("error"))
        if exc is not None:
            mark_captured(exc)
    return result


_CLIENT_WRAPPERS: tuple[tuple[str, Callable[..., Any]], ...] = (
    ("add_context_tags", _add_context_tags),
    ("exception_is_already_captured", _already_captured),
    ("mark_exception_as_captured", _mark_captured),
)


def _wrap(module: ModuleType, name: str, wrapper: Callable[..., Any]) -> None:
    if hasattr(module, name) and not find_wrapper(getattr(module, name), wrapper):
        wrapt.wrap_function_wrapper(module, name, wrapper)


def _unwrap(module: ModuleType, name: str, wrapper: Callable[..., Any]) -> None:
    """Remove our wrapper when it is outermost; under another one it stays, inert."""
    attribute = getattr(module, name, None)
    if getattr(attribute, "_self_wrapper", None) is wrapper:
        setattr(module, name, attribute.__wrapped__)  # type: ignore[union-attr]


# -- the context variable ---------------------------------------------------------------------


def _install_stack(contexts: ModuleType) -> None:
    current = getattr(contexts, _STACK)
    if isinstance(current, ContextStack):
        return
    stack = ContextStack(current, contexts)
    setattr(contexts, _STACK, stack)
    _state.contexts, _state.stack = contexts, stack


def _remove_stack() -> None:
    contexts, stack = _state.contexts, _state.stack
    if contexts is not None and stack is not None and getattr(contexts, _STACK) is stack:
        setattr(contexts, _STACK, stack.__wrapped__)
    _state.contexts = _state.stack = None


# -- delivery through posthog-python's client ----------------------------------------------


def _python_client_getter(explicit: Any) -> Callable[[], Any] | None:
    """How to find the app's posthog-python client, or None when it has none configured."""
    import posthog

    def configured_key() -> bool:
        key = getattr(posthog, "project_api_key", None) or getattr(posthog, "api_key", None)
        return isinstance(key, str) and bool(key.strip())

    if explicit is not None:
        return lambda: explicit
    if getattr(posthog, "default_client", None) is None and not configured_key():
        return None

    def module_client() -> Any:
        client = getattr(posthog, "default_client", None)
        if client is None and configured_key():
            client = posthog.setup()
        return client

    return module_client


def _autocapture_setting(explicit: Any) -> bool:
    import posthog

    source = explicit if explicit is not None else getattr(posthog, "default_client", None)
    value = getattr(source, "enable_exception_autocapture", None)
    if isinstance(value, bool):
        return value
    return bool(getattr(posthog, "enable_exception_autocapture", False))


def _route_events(explicit: Any) -> None:
    getter = _python_client_getter(explicit)
    if getter is None:
        return
    client = Client(
        "",
        transport=PosthogPythonTransport(getter),
        enable_exception_autocapture=_autocapture_setting(explicit),
    )
    _state.previous = global_client.set_client(client)
    _state.routed = client


def _restore_client() -> None:
    routed, previous = _state.routed, _state.previous
    _state.routed = _state.previous = None
    if routed is not None and global_client.current_client() is routed:
        global_client.set_client(previous)
    if routed is not None:
        routed.shutdown(0)


# -- instrumentor -------------------------------------------------------------------------------


class PosthogPythonInstrumentor(PosthogLibraryInstrumentor):
    """posthog-python's context and client on OpenTelemetry. See the module docstring.

    Options of ``instrument()``: ``client`` (a posthog-python client for posthog-otel's
    events; default: posthog-python's default client) and ``route_events`` (default True).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        # posthog-python is patched when the app imports it (now, if it already has): an app
        # that only has it installed does not pay for importing it (and httpx with it)
        options = dict(kwargs)
        _hooks.start(self.library_supported)
        _hooks.when_imported("posthog", lambda module: _patch(options))

    def _uninstrument(self, **kwargs: Any) -> None:
        _hooks.stop()
        if not _state.active:
            return  # posthog-python was never imported: nothing was patched
        _state.active = False
        try:
            import posthog.client as python_client

            _remove_stack()
            for name, wrapper in _CLIENT_WRAPPERS:
                _unwrap(python_client, name, wrapper)
            _restore_client()
        except Exception:
            _logger.debug("posthog-otel could not uninstrument posthog-python", exc_info=True)


_hooks = ImportHooks("posthog-python")


def _patch(options: dict[str, Any]) -> None:
    """Put posthog-python's context on OpenTelemetry and wrap its capture checks."""
    try:
        import posthog.client as python_client
        import posthog.contexts as contexts

        _install_stack(contexts)
        for name, wrapper in _CLIENT_WRAPPERS:
            _wrap(python_client, name, wrapper)
        _state.active = True
        if options.get("route_events", True):
            _route_events(options.get("client"))
    except Exception:
        _logger.warning("posthog-otel could not instrument posthog-python", exc_info=True)
