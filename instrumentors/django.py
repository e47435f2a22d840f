"""PostHog context for Django: posthog-python's contexts middleware, on OpenTelemetry.

In ``settings.py`` (the setting names are posthog-python's)::

    MIDDLEWARE = [
        # ... SessionMiddleware, AuthenticationMiddleware ...
        "posthog_otel.instrumentors.django.PosthogContextMiddleware",
        # ...
    ]
    POSTHOG_MW_CAPTURE_EXCEPTIONS = True      # default
    POSTHOG_MW_CLIENT = None                  # a posthog_otel.Client; default: the default client
    POSTHOG_MW_EXTRA_TAGS = lambda request: {"tenant": request.headers.get("X-Tenant")}
    POSTHOG_MW_REQUEST_FILTER = lambda request: not request.path.startswith("/health")
    POSTHOG_MW_TAG_MAP = lambda tags: {k: v for k, v in tags.items() if k != "email"}
    POSTHOG_MW_TRUST_PROXY_HEADERS = False    # True behind a proxy: $ip from X-Forwarded-For

or let ``PosthogDjangoInstrumentor().instrument()`` (entry point ``posthog_django``, enabled by
``PosthogInstrumentor`` and ``opentelemetry-instrument``) insert the middleware for you.

Each request runs in a non-fresh PostHog context (rules in :mod:`posthog_otel.instrumentors._request`):
distinct id and session from ``X-POSTHOG-DISTINCT-ID`` / ``X-POSTHOG-SESSION-ID`` (and trusted
baggage); without a distinct id, the authenticated user's ``pk`` and an ``email`` tag; tags
``$current_url``, ``$request_method``, ``$request_path``, ``$ip``, ``$user_agent``. The callables
may also be given as dotted paths. The middleware is hybrid: it runs async when the rest of the
stack below it is async (then the user comes from ``await request.auser()``) and sync otherwise,
never adding a thread hop. ``StreamingHttpResponse`` bodies are produced in the request's context.

Exceptions that Django turns into 500 responses are captured once, as ``$exception`` with the
request's identity and tags: view exceptions in ``process_exception``; under WSGI also those
raised by middleware inside this one or while rendering (``got_request_exception``). Client
errors (``Http404``, ``PermissionDenied``, ``BadRequest``, ``SuspiciousOperation``) are not.

With contrib's ``DjangoInstrumentor``, put this middleware after (inside) contrib's, as the
instrumentor does: contrib starts its server span in a Context extracted from the headers, and
a context entered outside it would not be current in the view.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping
from typing import Any

from posthog_otel import context as contexts
from posthog_otel.propagation.baggage import sanitize_header_value

from ._base import PosthogLibraryInstrumentor
from ._lifespan import answer_lifespan
from ._request import (
    RequestContext,
    RequestInfo,
    RequestOptions,
    capture_request_exception,
    enter_request,
    exit_request,
)

__all__ = [
    "MIDDLEWARE_PATH",
    "PosthogContextMiddleware",
    "PosthogDjangoInstrumentor",
    "options_from_settings",
    "request_info",
    "with_posthog_middleware",
]

_logger = logging.getLogger("posthog_otel")

MIDDLEWARE_PATH = "posthog_otel.instrumentors.django.PosthogContextMiddleware"
_CONTRIB_MIDDLEWARE = (
    "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
)
# Middleware that set request.user: ours goes after the last of them so the user is known.
_USER_MIDDLEWARE = (
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.RemoteUserMiddleware",
    "django.contrib.auth.middleware.PersistentRemoteUserMiddleware",
)
_REQUEST_ATTR = "_posthog_otel_request"
_DISTINCT_ID_META = "HTTP_X_POSTHOG_DISTINCT_ID"


def _django(module: str) -> Any:
    """A Django module, imported on use (Django ships no type information)."""
    return importlib.import_module(module)


# -- settings -----------------------------------------------------------------------------


def _callable_setting(settings: Any, name: str) -> Callable[..., Any] | None:
    value = getattr(settings, name, None)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = _django("django.utils.module_loading").import_string(value)
        except Exception:
            _logger.warning("posthog-otel: %s = %r cannot be imported; ignored", name, value)
            return None
    if not callable(value):
        _logger.warning("posthog-otel: %s must be callable, got %r; ignored", name, value)
        return None
    return value  # type: ignore[no-any-return]


def _bool_setting(settings: Any, name: str, default: bool) -> bool:
    value = getattr(settings, name, default)
    if not isinstance(value, bool):
        _logger.warning("posthog-otel: %s must be True or False, got %r", name, value)
        return default
    return value


def options_from_settings(settings: Any = None) -> RequestOptions:
    """The middleware's options from Django settings (``POSTHOG_MW_*``); never raises."""
    from posthog_otel.client import Client

    if settings is None:
        settings = _django("django.conf").settings
    client = getattr(settings, "POSTHOG_MW_CLIENT", None)
    if client is not None and not isinstance(client, Client):
        _logger.warning(
            "posthog-otel: POSTHOG_MW_CLIENT must be a posthog_otel.Client, got %r; "
            "using the default client",
            client,
        )
        client = None
    return RequestOptions(
        capture_exceptions=_bool_setting(settings, "POSTHOG_MW_CAPTURE_EXCEPTIONS", True),
        client=client,
        extra_tags=_callable_setting(settings, "POSTHOG_MW_EXTRA_TAGS"),
        request_filter=_callable_setting(settings, "POSTHOG_MW_REQUEST_FILTER"),
        tag_map=_callable_setting(settings, "POSTHOG_MW_TAG_MAP"),
        trust_proxy_headers=_bool_setting(settings, "POSTHOG_MW_TRUST_PROXY_HEADERS", False),
    )


# -- the request --------------------------------------------------------------------------


def request_info(request: Any) -> RequestInfo:
    """A :class:`RequestInfo` from a Django ``HttpRequest`` (WSGI or ASGI)."""
    meta: Mapping[str, Any] = request.META
    headers: dict[str, str] = {}
    for key, value in meta.items():
        if key.startswith("HTTP_") and isinstance(value, str):
            headers[key[5:].replace("_", "-").lower()] = value
    try:
        url = request.build_absolute_uri()
    except Exception:  # DisallowedHost: Django answers 400 itself; we only need a URL
        host = meta.get("HTTP_HOST") or meta.get("SERVER_NAME") or "localhost"
        url = f"{request.scheme}://{host}{request.get_full_path()}"
    return RequestInfo(
        method=request.method or "GET",
        url=url,
        path=request.path,
        headers=headers,
        peer=sanitize_header_value(meta.get("REMOTE_ADDR")),
    )


def _user_identity(user: Any) -> tuple[str | None, dict[str, Any]] | None:
    """``(pk, {"email": ...})`` of an authenticated user, else None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    pk = getattr(user, "pk", None)
    tags: dict[str, Any] = {}
    email = getattr(user, "email", None)
    if email:
        tags["email"] = str(email)
    return (None if pk is None else str(pk)), tags


async def _auser_identity(request: Any) -> tuple[str | None, dict[str, Any]] | None:
    auser = getattr(request, "auser", None)
    if auser is not None:
        return _user_identity(await auser())
    if not hasattr(request, "user"):
        return None
    from asgiref.sync import sync_to_async  # Django < 5.0: no request.auser()

    return await sync_to_async(lambda: _user_identity(request.user))()


class _Tracked:
    """What the middleware leaves on the request for its exception hooks."""

    __slots__ = ("context", "options")

    def __init__(self, context: RequestContext, options: RequestOptions) -> None:
        self.context = context
        self.options = options


def _capture_in(tracked: _Tracked, exc: BaseException) -> None:
    capture_request_exception(exc, tracked.options, tracked.context)


def _is_client_error(exc: BaseException) -> bool:
    global _CLIENT_ERRORS
    if _CLIENT_ERRORS is None:
        errors = _django("django.core.exceptions")
        _CLIENT_ERRORS = (
            _django("django.http").Http404,
            errors.PermissionDenied,
            errors.BadRequest,
            errors.SuspiciousOperation,
            _django("django.http.multipartparser").MultiPartParserError,
        )
    return isinstance(exc, _CLIENT_ERRORS)


_CLIENT_ERRORS: tuple[type[BaseException], ...] | None = None


def _on_got_request_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """Django signal: a 500 is being built (an exception escaped a view or middleware)."""
    try:
        tracked = getattr(request, _REQUEST_ATTR, None)
        exc = sys.exc_info()[1]  # empty when Django builds the 500 in another thread (ASGI)
        if isinstance(tracked, _Tracked) and exc is not None:
            _capture_in(tracked, exc)
    except Exception:
        _logger.debug("posthog-otel got_request_exception hook failed", exc_info=True)


_signal_lock = threading.Lock()
_signal_connected = False


def _connect_signal() -> None:
    global _signal_connected
    if _signal_connected:
        return
    with _signal_lock:
        if not _signal_connected:
            _django("django.core.signals").got_request_exception.connect(
                _on_got_request_exception, weak=False, dispatch_uid="posthog_otel"
            )
            _signal_connected = True


# -- streaming bodies ---------------------------------------------------------------------


def _scoped_chunks(chunks: Iterable[Any], context: RequestContext) -> Iterator[Any]:
    iterator = iter(chunks)
    try:
        while True:
            token, attached = contexts.attach_scope(context.scope)
            try:
                chunk = next(iterator)
            except StopIteration:
                return
            finally:
                contexts.detach_scope(token, attached)
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        try:
            if close is not None:
                close()
        finally:
            exit_request(context)


async def _ascoped_chunks(chunks: AsyncIterator[Any], context: RequestContext) -> Any:
    iterator = chunks.__aiter__()
    try:
        while True:
            token, attached = contexts.attach_scope(context.scope)
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
            finally:
                contexts.detach_scope(token, attached)
            yield chunk
    finally:
        aclose = getattr(iterator, "aclose", None)
        try:
            if aclose is not None:
                await aclose()
        finally:
            exit_request(context)


def _finish(context: RequestContext | None, response: Any) -> Any:
    """Leave the request's context, keeping it for a streaming body until the body ends."""
    if context is None:
        return response
    try:
        if (
            getattr(response, "streaming", False)
            and getattr(response, "file_to_stream", None) is None
        ):
            context.detach()
            if getattr(response, "is_async", False):
                response.streaming_content = _ascoped_chunks(response.streaming_content, context)
            else:
                response.streaming_content = _scoped_chunks(response.streaming_content, context)
            return response
    except Exception:
        _logger.debug("posthog-otel could not wrap a streaming response", exc_info=True)
    exit_request(context)
    return response


# -- the middleware -----------------------------------------------------------------------


class PosthogContextMiddleware:
    """Django middleware (sync and async); settings as in the module docstring."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from asgiref.sync import iscoroutinefunction, markcoroutinefunction

        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        try:
            self.options = options_from_settings()
        except Exception:
            _logger.warning("posthog-otel could not read its Django settings", exc_info=True)
            self.options = RequestOptions()
        try:
            _connect_signal()
        except Exception:
            _logger.debug("posthog-otel could not connect got_request_exception", exc_info=True)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self.__acall__(request)
        context = self._enter(request, lambda: _user_identity(getattr(request, "user", None)))
        try:
            response = self.get_response(request)
        except Exception as exc:  # Django converts exceptions below us; a bare caller may not
            if context is not None:
                capture_request_exception(exc, self.options, context)
            exit_request(context)
            raise
        return _finish(context, response)

    async def __acall__(self, request: Any) -> Any:
        identity: tuple[str | None, dict[str, Any]] | None = None
        if _DISTINCT_ID_META not in request.META:
            try:
                identity = await _auser_identity(request)
            except Exception:
                _logger.warning("posthog-otel could not read the request's user", exc_info=True)
        context = self._enter(request, lambda: identity)
        try:
            response = await self.get_response(request)
        except Exception as exc:
            if context is not None:
                capture_request_exception(exc, self.options, context)
            exit_request(context)
            raise
        return _finish(context, response)

    def _enter(
        self, request: Any, identify: Callable[[], tuple[str | None, dict[str, Any]] | None]
    ) -> RequestContext | None:
        try:
            context = enter_request(request_info(request), request, self.options, identify)
            if context is not None:
                setattr(request, _REQUEST_ATTR, _Tracked(context, self.options))
            return context
        except Exception:
            _logger.debug("posthog-otel could not read a Django request", exc_info=True)
            return None

    def process_exception(self, request: Any, exception: Exception) -> None:
        """Capture a view's exception (Django turns it into a 500 after this)."""
        try:
            tracked = getattr(request, _REQUEST_ATTR, None)
            if isinstance(tracked, _Tracked) and not _is_client_error(exception):
                _capture_in(tracked, exception)
        except Exception:
            _logger.debug("posthog-otel process_exception failed", exc_info=True)
        return None


# -- the instrumentor ---------------------------------------------------------------------


def with_posthog_middleware(middleware: Iterable[str]) -> list[str] | None:
    """``middleware`` with ours inserted, or None when it is already there.

    Position: after the middleware that sets ``request.user`` and after contrib's
    OpenTelemetry middleware, whichever comes last; first when neither is present.
    """
    entries = list(middleware)
    if MIDDLEWARE_PATH in entries:
        return None
    position = 0
    for index, entry in enumerate(entries):
        if entry in _USER_MIDDLEWARE or entry == _CONTRIB_MIDDLEWARE:
            position = index + 1
    entries.insert(position, MIDDLEWARE_PATH)
    return entries


def _answer_lifespan_in(asgi_class: Any) -> None:
    """Make ``asgi_class.__call__`` answer lifespan (Django rejects it) and flush at shutdown.

    A plain ``async def`` replaces the method, not a wrapt proxy: servers tell ASGI 3 apps
    from factories and ASGI 2 apps by ``iscoroutinefunction(app.__call__)``.
    """
    original = vars(asgi_class)["__call__"]
    if getattr(original, "_posthog_original", None) is not None:
        return

    async def __call__(self: Any, scope: Any, receive: Any, send: Any) -> Any:
        if isinstance(scope, Mapping) and scope.get("type") == "lifespan":
            await answer_lifespan(receive, send)
            return None
        return await original(self, scope, receive, send)

    __call__._posthog_original = original  # type: ignore[attr-defined]
    asgi_class.__call__ = __call__


def _restore_asgi_call(asgi_class: Any) -> None:
    original = getattr(vars(asgi_class)["__call__"], "_posthog_original", None)
    if original is not None:
        asgi_class.__call__ = original


class PosthogDjangoInstrumentor(PosthogLibraryInstrumentor):
    """Inserts :class:`PosthogContextMiddleware` into ``settings.MIDDLEWARE`` if missing.

    When the settings are already configured the list is changed at once; otherwise (e.g.
    under ``opentelemetry-instrument``, before Django loads its settings) just before Django
    builds its middleware chain. ``uninstrument()`` removes what it inserted; handlers built
    meanwhile keep their chain.

    Django's ``ASGIHandler`` also gets answers to ASGI lifespan messages (Django itself rejects
    them): at ``lifespan.shutdown`` queued spans and events are delivered, since uvicorn ends
    its process without running ``atexit``.
    """

    _inserted = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("django >= 4.2",)

    def _instrument(self, **kwargs: Any) -> None:
        try:
            import wrapt

            handler_class = _django("django.core.handlers.base").BaseHandler

            if not isinstance(vars(handler_class).get("load_middleware"), wrapt.FunctionWrapper):
                wrapt.wrap_function_wrapper(handler_class, "load_middleware", self._load_middleware)
            _answer_lifespan_in(_django("django.core.handlers.asgi").ASGIHandler)
            if _django("django.conf").settings.configured:
                self._insert()
        except Exception:
            _logger.exception("posthog-otel could not instrument Django")

    def _load_middleware(
        self, wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            self._insert()
        except Exception:
            _logger.warning("posthog-otel could not add its Django middleware", exc_info=True)
        return wrapped(*args, **kwargs)

    @classmethod
    def _insert(cls) -> None:
        settings = _django("django.conf").settings
        current = getattr(settings, "MIDDLEWARE", None)
        if current is None:
            return
        updated = with_posthog_middleware(current)
        if updated is not None:
            settings.MIDDLEWARE = updated
            cls._inserted = True

    def _uninstrument(self, **kwargs: Any) -> None:
        try:
            import wrapt

            handler_class = _django("django.core.handlers.base").BaseHandler

            wrapper = vars(handler_class).get("load_middleware")
            if isinstance(wrapper, wrapt.FunctionWrapper):
                handler_class.load_middleware = wrapper.__wrapped__
            _restore_asgi_call(_django("django.core.handlers.asgi").ASGIHandler)
            cls = type(self)
            if cls._inserted:
                cls._inserted = False
                settings = _django("django.conf").settings
                current = getattr(settings, "MIDDLEWARE", None) if settings.configured else None
                if current is not None and MIDDLEWARE_PATH in current:
                    settings.MIDDLEWARE = [m for m in current if m != MIDDLEWARE_PATH]
        except Exception:
            _logger.exception("posthog-otel could not uninstrument Django")
