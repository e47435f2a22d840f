"""PostHog context for Flask apps.

    from .flask import PosthogFlaskInstrumentor, instrument_app

    instrument_app(app)                                  # one app
    instrument_app(app, trust_proxy_headers=True,        # options: posthog_otel.instrumentors._request
                   extra_tags=lambda request: {"tenant": request.headers.get("X-Tenant")})

    PosthogFlaskInstrumentor().instrument()              # every Flask app created afterwards

``PosthogFlaskInstrumentor`` is the entry point ``posthog_flask``, so ``PosthogInstrumentor``
and ``opentelemetry-instrument`` enable it. ``uninstrument()`` restores ``Flask``; apps
instrumented meanwhile keep their context until ``uninstrument_app(app)``.

Each request runs in its own non-fresh PostHog context (rules in
:mod:`posthog_otel.instrumentors._request`), entered by a ``before_request`` hook that runs first, or right
after contrib's ``FlaskInstrumentor`` hook when that is present (contrib starts its server span
in a Context extracted from the headers; ours is entered inside it, so events carry its trace
and the span gets the request's tags). The callables receive ``flask.request``. Nothing is
kept in ``flask.g``: the context lives in the OpenTelemetry Context and in the WSGI environ.

A wrapper around ``app.wsgi_app`` restores the caller's Context when the app returns (whatever
hooks attached meanwhile) and produces the response body, streaming ones included, with the
request's context current. Unhandled exceptions (``got_request_exception``, the 500 path) are
captured once, with the request's identity and tags; ``abort(404)`` and exceptions handled by
an ``errorhandler`` are not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, cast

from posthog_otel import context as contexts
from posthog_otel.context import runtime as _runtime

from ._base import ImportHooks, PosthogLibraryInstrumentor, imported, instrument_after_init
from ._request import (
    RequestContext,
    RequestOptions,
    capture_request_exception,
    enter_request,
    exit_request,
)
from .wsgi import request_info_from_environ

__all__ = ["PosthogFlaskInstrumentor", "instrument_app", "uninstrument_app"]

_logger = logging.getLogger("posthog.otel")

_EXTENSION = "posthog_otel"
_ENVIRON_KEY = "posthog_otel.request_context"
_CONTRIB_PREFIX = "opentelemetry.instrumentation."


class _AppState:
    """Per-app instrumentation: options, hook, signal receiver, original ``wsgi_app``."""

    def __init__(self, app: Any, options: RequestOptions) -> None:
        self.options = options
        self.original_wsgi_app = app.wsgi_app
        self.placed = False
        self.lock = threading.Lock()
        self.before_request = _before_request_hook(options)
        self.on_exception = _exception_receiver(options)


def _before_request_hook(options: RequestOptions) -> Callable[[], None]:
    def posthog_before_request() -> None:
        try:
            from flask import request

            environ = request.environ
            if _ENVIRON_KEY in environ:
                return
            current = cast(Any, request)._get_current_object()  # the Request, not the proxy
            context = enter_request(request_info_from_environ(environ), current, options)
            if context is not None:
                environ[_ENVIRON_KEY] = context
        except Exception:
            _logger.debug("posthog-otel could not read a Flask request", exc_info=True)

    return posthog_before_request


def _exception_receiver(options: RequestOptions) -> Callable[..., None]:
    def on_exception(sender: Any, exception: BaseException | None = None, **extra: Any) -> None:
        try:
            from flask import request

            context = request.environ.get(_ENVIRON_KEY)
            if exception is not None and isinstance(context, RequestContext):
                capture_request_exception(exception, options, context)
        except Exception:
            _logger.debug("posthog-otel got_request_exception hook failed", exc_info=True)

    return on_exception


def _place_hook(app: Any, hook: Callable[[], None]) -> None:
    """Put ``hook`` first among the app's before_request hooks, or right after contrib's."""
    funcs: list[Any] = app.before_request_funcs.setdefault(None, [])
    others = [func for func in funcs if func is not hook]
    position = 0
    for index, func in enumerate(others):
        if getattr(func, "__module__", "").startswith(_CONTRIB_PREFIX):
            position = index + 1
    wanted = [*others[:position], hook, *others[position:]]
    if funcs != wanted:
        funcs[:] = wanted


class _ScopedBody:
    """The response body, produced with the request's context current; closes the context."""

    def __init__(self, body: Iterable[bytes], context: RequestContext) -> None:
        self._body = body
        self._iterator: Iterator[bytes] | None = None
        self._context = context

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = iter(self._body)
        guard, attached = contexts.attach_scope(self._context.scope)
        try:
            return next(self._iterator)
        finally:
            contexts.detach_scope(guard, attached)  # resets whatever the chunk attached too

    def close(self) -> None:
        guard, attached = contexts.attach_scope(self._context.scope)
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            contexts.detach_scope(guard, attached)
            exit_request(self._context)


class _PosthogWSGIApp:
    """Wraps ``app.wsgi_app``: restores the Context afterwards, scopes the body."""

    def __init__(self, app: Any, wsgi_app: Callable[..., Iterable[bytes]], state: _AppState):
        self.app = app
        self.wsgi_app = wsgi_app
        self.state = state

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        state = self.state
        if not state.placed:
            self._place()
        guard = _runtime.attach(_runtime.get_current())
        context: RequestContext | None = None
        try:
            body = self.wsgi_app(environ, start_response)
        except Exception as exc:  # PROPAGATE_EXCEPTIONS (testing, debug)
            context = environ.get(_ENVIRON_KEY)
            if isinstance(context, RequestContext):
                capture_request_exception(exc, state.options, context)
                context.forget()  # the guard below restores the Context
                exit_request(context)
            raise
        finally:
            _runtime.detach(guard, None)  # back to the caller's Context, whatever hooks left
            if context is None:
                context = environ.get(_ENVIRON_KEY)
            if isinstance(context, RequestContext):
                context.forget()
        if not isinstance(context, RequestContext):
            return body
        return _ScopedBody(body, context)

    def _place(self) -> None:
        # Contrib's hooks may have been registered after ours (its Flask subclass registers
        # them after Flask.__init__ returned); hooks cannot be added after the first request,
        # so placing once here is final.
        try:
            with self.state.lock:
                if not self.state.placed:
                    _place_hook(self.app, self.state.before_request)
                    self.state.placed = True
        except Exception:
            _logger.debug("posthog-otel could not order its Flask hook", exc_info=True)


def instrument_app(app: Any, **options: Any) -> Any:
    """Give every request of ``app`` a PostHog context; returns ``app``. Idempotent.

    Options as :class:`posthog_otel.instrumentors._request.RequestOptions` (invalid ones raise
    ``ValueError``); call before the app serves its first request.
    """
    if _EXTENSION in app.extensions:
        return app
    from flask import got_request_exception

    state = _AppState(app, RequestOptions(**options))
    app.extensions[_EXTENSION] = state
    app.wsgi_app = _PosthogWSGIApp(app, app.wsgi_app, state)
    _place_hook(app, state.before_request)
    if state.options.capture_exceptions:
        got_request_exception.connect(state.on_exception, app, weak=False)
    return app


def uninstrument_app(app: Any) -> None:
    """Undo :func:`instrument_app` (a ``wsgi_app`` wrapped again since then stays wrapped)."""
    state = app.extensions.pop(_EXTENSION, None)
    if not isinstance(state, _AppState):
        return
    from flask import got_request_exception

    got_request_exception.disconnect(state.on_exception, app)
    funcs = app.before_request_funcs.get(None, [])
    if state.before_request in funcs:
        funcs.remove(state.before_request)
    if isinstance(app.wsgi_app, _PosthogWSGIApp) and app.wsgi_app.state is state:
        app.wsgi_app = state.original_wsgi_app


class PosthogFlaskInstrumentor(PosthogLibraryInstrumentor):
    """Instruments every ``Flask`` app created after ``instrument(**options)``.

    It wraps ``flask.app.Flask.__init__`` (the class itself, so ``from flask import Flask``
    done earlier and contrib's ``Flask`` subclass are covered too).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("flask >= 2.2",)

    def _instrument(self, **kwargs: Any) -> None:
        options = {
            k: v for k, v in kwargs.items() if k not in ("tracer_provider", "meter_provider")
        }
        try:
            RequestOptions(**options)
        except Exception:
            _logger.exception("posthog-otel could not instrument Flask")
            return
        _hooks.start(self.library_supported)
        _hooks.when_imported("flask.app", _wrap_init(options))

    def _uninstrument(self, **kwargs: Any) -> None:
        _hooks.stop()
        try:
            import wrapt

            app_module = imported("flask.app")
            if app_module is None:
                return
            init = vars(app_module.Flask).get("__init__")
            if isinstance(init, wrapt.FunctionWrapper):
                app_module.Flask.__init__ = init.__wrapped__
        except Exception:
            _logger.exception("posthog-otel could not uninstrument Flask")


_hooks = ImportHooks("Flask")


def _wrap_init(options: dict[str, Any]) -> Callable[[Any], None]:
    def wrap(app_module: Any) -> None:
        import wrapt

        flask_class = app_module.Flask
        if not isinstance(vars(flask_class).get("__init__"), wrapt.FunctionWrapper):
            wrapt.wrap_function_wrapper(
                flask_class, "__init__", instrument_after_init(instrument_app, options, "Flask")
            )

    return wrap
