"""PostHog context for ASGI apps: Starlette, FastAPI, or any ASGI callable.

    from .asgi import PosthogASGIMiddleware, instrument_app

    app = PosthogASGIMiddleware(app)        # any ASGI app
    instrument_app(fastapi_app)             # Starlette/FastAPI: adds the middleware innermost

    PosthogStarletteInstrumentor().instrument()   # every Starlette/FastAPI app created later

One PostHog context per HTTP request and per websocket connection (rules in
:mod:`posthog_otel.instrumentors._request`). It stays current for the whole request task: streaming
responses, ``BackgroundTasks`` and ``asyncio.create_task`` children see it; leaving it from
another task never errors. Exceptions leaving the app are captured once and re-raised.

At lifespan shutdown, before the app's ``lifespan.shutdown.complete`` reaches the server, queued
spans and events are delivered (within the clients' ``shutdown_timeout``): uvicorn ends its
processes by re-raising the stop signal, which skips ``atexit``.

Placed innermost among user middleware, it runs inside contrib's ``OpenTelemetryMiddleware``
whichever was added first, so the server span is current when identity is set and gets it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any, cast
from urllib.parse import quote

import wrapt

from posthog_otel.propagation.baggage import sanitize_header_value

from ._base import ImportHooks, PosthogLibraryInstrumentor, imported, instrument_after_init
from ._lifespan import flush_off_loop
from ._request import (
    RequestInfo,
    RequestOptions,
    capture_request_exception,
    enter_request,
    exit_request,
)

__all__ = [
    "PosthogASGIMiddleware",
    "PosthogStarletteInstrumentor",
    "instrument_app",
    "request_info_from_scope",
]

_logger = logging.getLogger("posthog.otel")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def request_info_from_scope(scope: Scope) -> RequestInfo:
    """A :class:`RequestInfo` from an ASGI ``http`` or ``websocket`` scope."""
    headers: dict[str, str] = {}
    for name, value in scope.get("headers") or ():
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    scheme = scope.get("scheme") or ("ws" if scope.get("type") == "websocket" else "http")
    host = headers.get("host")
    if not host:
        server = scope.get("server")
        if server:
            name, port = server[0], server[1]
            host = name if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{name}:{port}"
        else:
            host = "localhost"
    path = quote(scope.get("root_path", "") + scope.get("path", ""), safe="/%;:@&=+$,!~*'()")
    query = (scope.get("query_string") or b"").decode("latin-1")
    client = scope.get("client")
    return RequestInfo(
        method=scope.get("method", "GET") if scope.get("type") == "http" else "WEBSOCKET",
        url=f"{scheme}://{host}{path}" + (f"?{query}" if query else ""),
        path=path or "/",
        headers=headers,
        peer=sanitize_header_value(client[0]) if client else None,
    )


class PosthogASGIMiddleware:
    """ASGI middleware; options as :class:`posthog_otel.instrumentors._request.RequestOptions`."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self.options = RequestOptions(**options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await self.app(scope, receive, _flush_before_shutdown_completes(send))
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            request = enter_request(request_info_from_scope(scope), scope, self.options)
        except Exception:
            _logger.debug("posthog-otel could not read an ASGI request", exc_info=True)
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            capture_request_exception(exc, self.options)
            raise
        finally:
            exit_request(request)


_SHUTDOWN_ENDS = frozenset({"lifespan.shutdown.complete", "lifespan.shutdown.failed"})


def _flush_before_shutdown_completes(send: Send) -> Send:
    async def send_after_flush(message: MutableMapping[str, Any]) -> None:
        if message.get("type") in _SHUTDOWN_ENDS:
            await flush_off_loop()
        await send(message)

    return send_after_flush


def instrument_app(app: Any, **options: Any) -> Any:
    """Add :class:`PosthogASGIMiddleware` to a Starlette/FastAPI app, innermost; returns app.

    Call before the app serves its first request. Idempotent.
    """
    from starlette.middleware import Middleware

    middleware = app.user_middleware
    if any(getattr(m, "cls", None) is PosthogASGIMiddleware for m in middleware):
        return app
    RequestOptions(**options)  # validate now
    middleware.append(Middleware(cast(Any, PosthogASGIMiddleware), **options))
    return app


_APP_CLASSES = (("starlette.applications", "Starlette"), ("fastapi.applications", "FastAPI"))
_hooks = ImportHooks("Starlette")


def _wrap_init(name: str, options: dict[str, Any]) -> Callable[[Any], None]:
    def wrap(module: Any) -> None:
        cls = getattr(module, name)
        if not isinstance(vars(cls).get("__init__"), wrapt.FunctionWrapper):
            wrapt.wrap_function_wrapper(
                cls, "__init__", instrument_after_init(instrument_app, options, "Starlette")
            )

    return wrap


class PosthogStarletteInstrumentor(PosthogLibraryInstrumentor):
    """Adds the middleware to every Starlette/FastAPI app created after ``instrument()``.

    Each class is wrapped when the app imports its module (FastAPI is optional).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ["starlette >= 0.27"]

    def _instrument(self, **kwargs: Any) -> None:
        options = {k: v for k, v in kwargs.items() if k != "tracer_provider"}
        try:
            RequestOptions(**options)
        except Exception:
            _logger.exception("posthog-otel could not instrument Starlette")
            return
        _hooks.start(self.library_supported)
        for module, name in _APP_CLASSES:
            _hooks.when_imported(module, _wrap_init(name, options))

    def _uninstrument(self, **kwargs: Any) -> None:
        _hooks.stop()
        for module, name in _APP_CLASSES:
            loaded = imported(module)
            cls: Any = getattr(loaded, name, None) if loaded is not None else None
            init = vars(cls).get("__init__") if cls is not None else None
            if isinstance(init, wrapt.FunctionWrapper):
                cls.__init__ = init.__wrapped__
