"""PostHog context in threads and thread pools, and capture of unhandled exceptions.

Usage::

    from .threading import PosthogThreadingInstrumentor

    PosthogThreadingInstrumentor().instrument()
    PosthogThreadingInstrumentor().instrument(capture_unhandled=False)   # no excepthooks

or zero-code: ``PosthogInstrumentor().instrument()`` and ``opentelemetry-instrument`` enable it
(entry point ``posthog_threading``; it needs no library).

**Context.** ``threading.Thread`` (and ``Timer``) remember the OpenTelemetry Context current
when ``start()`` is called and attach it around ``run()``; ``ThreadPoolExecutor.submit`` runs
the submitted callable in the submitter's Context, and so does ``loop.run_in_executor``, which
submits to one. The whole Context is carried (PostHog context, current span, baggage), exactly
as contrib's ``ThreadingInstrumentor`` does, so the behaviour is the same with or without it:
without it threads would start with an empty Context. When contrib's ``ThreadingInstrumentor``
is instrumented (before or after this one), ours steps aside and contrib's carries the Context,
so nothing is attached twice. Like contrib's, a ``Thread`` subclass whose ``run()`` neither is
``Thread.run`` nor calls it gets no Context; use :func:`posthog_otel.propagate_context` there,
and for work started by other means.

**Unhandled exceptions** (``capture_unhandled``: ``None`` (default) follows the client's
``enable_exception_autocapture``, ``True``/``False`` force it): ``threading.excepthook`` and
``sys.excepthook`` are chained: an ``Exception`` that ends a thread or the program is captured
once as ``$exception`` (``handled: false``) and then handed to the previous hook. A thread's
exception is captured in the Context the thread was started with, so it carries that context's
identity and tags. ``KeyboardInterrupt``/``SystemExit`` are not captured. ``uninstrument()``
restores the previous hooks (when ours are still installed; otherwise ours are left inert).

A helper for any callable: :func:`posthog_otel.propagate_context`.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Collection
from concurrent import futures
from types import TracebackType
from typing import Any

import wrapt

from posthog_otel.context import runtime as _runtime
from posthog_otel.context.carry import call_in_context

from ._base import PosthogLibraryInstrumentor
from ._outbound import find_wrapper

__all__ = ["PosthogThreadingInstrumentor"]

_logger = logging.getLogger("posthog.otel")

_CONTEXT_ATTR = "_posthog_otel_context"
_CONTRIB_CONTEXT_ATTR = "_otel_context"  # where contrib's ThreadingInstrumentor keeps it
_CONTRIB_MODULE = "opentelemetry.instrumentation.threading"


class _State:
    def __init__(self) -> None:
        self.active = False
        self.contrib: Any = None  # contrib's ThreadingInstrumentor singleton, when installed
        self.capture_unhandled: bool | None = None
        self.client: Any = None
        self.previous_threading_hook: Callable[[Any], object] | None = None
        self.previous_sys_hook: Callable[..., object] | None = None
        self.threading_hook: Callable[[Any], None] | None = None
        self.sys_hook: Callable[..., None] | None = None

    def contrib_active(self) -> bool:
        contrib = self.contrib
        return contrib is not None and bool(
            getattr(contrib, "_is_instrumented_by_opentelemetry", False)
        )

    def carrying(self) -> bool:
        """Whether our wrappers carry the Context (on, and contrib is not doing it)."""
        return self.active and not self.contrib_active()


_state = _State()


# -- context carrying -----------------------------------------------------------------------


def _thread_start(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
    if _state.carrying():
        try:
            setattr(instance, _CONTEXT_ATTR, _runtime.get_current())
        except Exception:
            _logger.debug("posthog-otel could not record a thread's context", exc_info=True)
    return wrapped(*args, **kwargs)


def _thread_run(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
    ctx = getattr(instance, _CONTEXT_ATTR, None) if _state.active else None
    if ctx is None:
        return wrapped(*args, **kwargs)
    result = call_in_context(ctx, wrapped, *args, **kwargs)
    # Done: let the Context go. (After an exception it stays, for the excepthook.)
    vars(instance).pop(_CONTEXT_ATTR, None)
    return result


def _pool_submit(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: Any) -> Any:
    if args and _state.carrying():
        try:
            args = (_Bound(_runtime.get_current(), args[0]), *args[1:])
        except Exception:
            _logger.debug("posthog-otel could not carry context into a pool", exc_info=True)
    return wrapped(*args, **kwargs)


class _Bound:
    """A callable that runs ``fn`` in ``ctx`` (named after ``fn`` for repr and debugging)."""

    __slots__ = ("ctx", "fn")

    def __init__(self, ctx: Any, fn: Callable[..., Any]) -> None:
        self.ctx = ctx
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return call_in_context(self.ctx, self.fn, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<in context: {self.fn!r}>"


_WRAPPED: tuple[tuple[Any, str, Callable[..., Any]], ...] = (
    (threading.Thread, "start", _thread_start),
    # Timer inherits Thread.start, unless something left its own copy in Timer (contrib's
    # uninstrument does): then that one is wrapped too (see _targets).
    (threading.Timer, "start", _thread_start),
    (threading.Thread, "run", _thread_run),
    (threading.Timer, "run", _thread_run),  # Timer.run does not call Thread.run
    (futures.ThreadPoolExecutor, "submit", _pool_submit),
)


def _targets() -> list[tuple[Any, str, Callable[..., Any]]]:
    """The attributes to wrap now: each one the class defines itself."""
    return [(owner, name, wrapper) for owner, name, wrapper in _WRAPPED if name in vars(owner)]


# -- unhandled exceptions -------------------------------------------------------------------


def _capture_wanted(client: Any) -> bool:
    if _state.capture_unhandled is not None:
        return _state.capture_unhandled
    return bool(getattr(client, "enable_exception_autocapture", True))


def _client() -> Any:
    if _state.client is not None:
        return _state.client
    from posthog_otel import global_client

    return global_client.get_client()


def _capture_unhandled(
    exc: BaseException | None, ctx: Any, properties: dict[str, Any], *, in_thread: bool
) -> None:
    if not _state.active or not isinstance(exc, Exception):
        return
    try:
        from posthog_otel.errors import is_captured

        if is_captured(exc):
            return
        client = _client()
        if not _capture_wanted(client):
            return
        # As posthog-python's excepthooks report it (level, source, mechanism).
        capture = client.capture_uncaught_exception
        if ctx is None:
            capture(exc, in_thread=in_thread, properties=properties)
        else:
            call_in_context(ctx, capture, exc, in_thread=in_thread, properties=properties)
    except Exception:
        _logger.debug("posthog-otel could not capture an unhandled exception", exc_info=True)


def _make_threading_hook(previous: Callable[[Any], object]) -> Callable[[Any], None]:
    def posthog_threading_excepthook(args: Any) -> None:
        thread = getattr(args, "thread", None)
        ctx = getattr(thread, _CONTEXT_ATTR, None) or getattr(thread, _CONTRIB_CONTEXT_ATTR, None)
        properties = {"thread_name": getattr(thread, "name", None)}
        _capture_unhandled(getattr(args, "exc_value", None), ctx, properties, in_thread=True)
        previous(args)

    return posthog_threading_excepthook


def _make_sys_hook(previous: Callable[..., object]) -> Callable[..., None]:
    def posthog_sys_excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        _capture_unhandled(exc, None, {}, in_thread=False)
        previous(exc_type, exc, tb)

    return posthog_sys_excepthook


def _install_hooks() -> None:
    if _state.threading_hook is None or threading.excepthook is not _state.threading_hook:
        _state.previous_threading_hook = threading.excepthook
        _state.threading_hook = _make_threading_hook(threading.excepthook)
        threading.excepthook = _state.threading_hook
    if _state.sys_hook is None or sys.excepthook is not _state.sys_hook:
        _state.previous_sys_hook = sys.excepthook
        _state.sys_hook = _make_sys_hook(sys.excepthook)
        sys.excepthook = _state.sys_hook


def _remove_hooks() -> None:
    if _state.threading_hook is not None and threading.excepthook is _state.threading_hook:
        threading.excepthook = _state.previous_threading_hook or threading.__excepthook__
        _state.threading_hook = None
    if _state.sys_hook is not None and sys.excepthook is _state.sys_hook:
        sys.excepthook = _state.previous_sys_hook or sys.__excepthook__
        _state.sys_hook = None
    # A hook installed over ours keeps calling ours, which is inert while not active.


def _unwrap(owner: Any, name: str, wrapper: Any) -> None:
    """Remove our wrapper from ``owner.name`` when it is the outermost one.

    Also when it sits there as a bound wrapper: contrib's uninstrument puts back what it
    read with ``getattr(cls, name)``, which for a wrapt wrapper is a bound copy of it.
    When something else wrapped over ours, ours stays in the chain, inert until the next
    ``instrument()``.
    """
    attribute = vars(owner).get(name)
    if getattr(attribute, "_self_wrapper", None) is wrapper and hasattr(attribute, "__wrapped__"):
        setattr(owner, name, attribute.__wrapped__)


# -- instrumentor -----------------------------------------------------------------------------


def _contrib_instrumentor() -> Any:
    import importlib
    import importlib.util

    try:
        if importlib.util.find_spec(_CONTRIB_MODULE) is None:
            return None
        return importlib.import_module(_CONTRIB_MODULE).ThreadingInstrumentor()
    except Exception:
        return None


class PosthogThreadingInstrumentor(PosthogLibraryInstrumentor):
    """Context in threads and pools; unhandled exception capture. See the module docstring.

    Options of ``instrument()``: ``capture_unhandled`` (``None``/``True``/``False``) and
    ``client`` (for the unhandled-exception capture; default: the default client).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        try:
            _state.contrib = _contrib_instrumentor()
            _state.client = kwargs.get("client")
            capture = kwargs.get("capture_unhandled")
            _state.capture_unhandled = None if capture is None else bool(capture)
            for owner, name, wrapper in _targets():
                if not find_wrapper(owner.__dict__.get(name), wrapper):
                    wrapt.wrap_function_wrapper(owner, name, wrapper)
            _state.active = True
            if capture is not False:
                _install_hooks()
        except Exception:
            _logger.warning("posthog-otel could not instrument threading", exc_info=True)

    def _uninstrument(self, **kwargs: Any) -> None:
        _state.active = False
        try:
            _remove_hooks()
            for owner, name, wrapper in reversed(_WRAPPED):
                _unwrap(owner, name, wrapper)
        except Exception:
            _logger.debug("posthog-otel could not uninstrument threading", exc_info=True)
