"""Reading a Django request for the PostHog middleware: its settings, the request, the user.

Private to :mod:`posthog_otel.instrumentors.django` (which re-exports
:func:`options_from_settings` and :func:`request_info`; its docstring lists the settings).

Usage::

    from ._django_request import options_from_settings, request_info, user_identity

    options = options_from_settings()               # POSTHOG_MW_* from django.conf.settings
    info = request_info(request)                    # method, URL, path, headers, peer
    identity = user_identity(request.user)          # (pk, {"email": ...}) or None
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from posthog_otel.propagation.baggage import sanitize_header_value

from ._request import RequestInfo, RequestOptions

__all__ = [
    "auser_identity",
    "django_module",
    "options_from_settings",
    "request_info",
    "user_identity",
]

_logger = logging.getLogger("posthog.otel")


def django_module(module: str) -> Any:
    """A Django module, imported on use (Django ships no type information)."""
    return importlib.import_module(module)


# -- settings -----------------------------------------------------------------------------


def _callable_setting(settings: Any, name: str) -> Callable[..., Any] | None:
    value = getattr(settings, name, None)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = django_module("django.utils.module_loading").import_string(value)
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
        settings = django_module("django.conf").settings
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


def user_identity(user: Any) -> tuple[str | None, dict[str, Any]] | None:
    """``(pk, {"email": ...})`` of an authenticated user, else None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    pk = getattr(user, "pk", None)
    tags: dict[str, Any] = {}
    email = getattr(user, "email", None)
    if email:
        tags["email"] = str(email)
    return (None if pk is None else str(pk)), tags


async def auser_identity(request: Any) -> tuple[str | None, dict[str, Any]] | None:
    auser = getattr(request, "auser", None)
    if auser is not None:
        return user_identity(await auser())
    if not hasattr(request, "user"):
        return None
    from asgiref.sync import sync_to_async  # Django < 5.0: no request.auser()

    return await sync_to_async(lambda: user_identity(request.user))()
