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
identity from the ``X-POSTHOG-*`` headers (distinct, session, window and device id) and trusted
baggage; without a distinct id, the authenticated user's ``pk`` and an ``email`` tag; tags
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

The settings and the request are read in ``_django_request``, exceptions are captured through
``_django_exceptions``, streaming bodies are wrapped by ``_django_streaming``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from ._base import ImportHooks, PosthogLibraryInstrumentor, imported
from ._django_exceptions import REQUEST_ATTR, Tracked, capture_in, connect_signal, is_client_error
from ._django_request import (
    auser_identity,
    django_module,
    options_from_settings,
    request_info,
    user_identity,
)
from ._django_streaming import finish_response
from ._lifespan import answer_lifespan
from ._request import (
    RequestContext,
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

_logger = logging.getLogger("posthog.otel")

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
_DISTINCT_ID_META = "HTTP_X_POSTHOG_DISTINCT_ID"


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
            connect_signal()
        except Exception:
            _logger.debug("posthog-otel could not connect got_request_exception", exc_info=True)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self.__acall__(request)
        context = self._enter(request, lambda: user_identity(getattr(request, "user", None)))
        try:
            response = self.get_response(request)
        except Exception as exc:  # Django converts exceptions below us; a bare caller may not
            if context is not None:
                capture_request_exception(exc, self.options, context)
            exit_request(context)
            raise
        return finish_response(context, response)

    async def __acall__(self, request: Any) -> Any:
        identity: tuple[str | None, dict[str, Any]] | None = None
        if _DISTINCT_ID_META not in request.META:
            try:
                identity = await auser_identity(request)
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
        return finish_response(context, response)

    def _enter(
        self, request: Any, identify: Callable[[], tuple[str | None, dict[str, Any]] | None]
    ) -> RequestContext | None:
        try:
            context = enter_request(request_info(request), request, self.options, identify)
            if context is not None:
                setattr(request, REQUEST_ATTR, Tracked(context, self.options))
            return context
        except Exception:
            _logger.debug("posthog-otel could not read a Django request", exc_info=True)
            return None

    def process_exception(self, request: Any, exception: Exception) -> None:
        """Capture a view's exception (Django turns it into a 500 after this)."""
        try:
            tracked = getattr(request, REQUEST_ATTR, None)
            if isinstance(tracked, Tracked) and not is_client_error(exception):
                capture_in(tracked, exception)
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
        _hooks.start(self.library_supported)
        _hooks.when_imported("django.core.handlers.base", self._wrap_load_middleware)
        _hooks.when_imported("django.core.handlers.asgi", _answer_lifespan_in_module)
        _hooks.when_imported("django.conf", self._insert_if_configured)

    def _wrap_load_middleware(self, base: Any) -> None:
        import wrapt

        handler_class = base.BaseHandler
        if not isinstance(vars(handler_class).get("load_middleware"), wrapt.FunctionWrapper):
            wrapt.wrap_function_wrapper(handler_class, "load_middleware", self._load_middleware)

    def _insert_if_configured(self, conf: Any) -> None:
        if conf.settings.configured:
            self._insert()

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
        settings = django_module("django.conf").settings
        current = getattr(settings, "MIDDLEWARE", None)
        if current is None:
            return
        updated = with_posthog_middleware(current)
        if updated is not None:
            settings.MIDDLEWARE = updated
            cls._inserted = True

    def _uninstrument(self, **kwargs: Any) -> None:
        _hooks.stop()
        try:
            import wrapt

            base: Any = imported("django.core.handlers.base")
            wrapper = vars(base.BaseHandler).get("load_middleware") if base else None
            if isinstance(wrapper, wrapt.FunctionWrapper):
                base.BaseHandler.load_middleware = wrapper.__wrapped__
            asgi = imported("django.core.handlers.asgi")
            if asgi is not None:
                _restore_asgi_call(asgi.ASGIHandler)
            cls = type(self)
            if cls._inserted:
                cls._inserted = False
                settings = django_module("django.conf").settings
                current = getattr(settings, "MIDDLEWARE", None) if settings.configured else None
                if current is not None and MIDDLEWARE_PATH in current:
                    settings.MIDDLEWARE = [m for m in current if m != MIDDLEWARE_PATH]
        except Exception:
            _logger.exception("posthog-otel could not uninstrument Django")


_hooks = ImportHooks("Django")


def _answer_lifespan_in_module(asgi: Any) -> None:
    _answer_lifespan_in(asgi.ASGIHandler)
