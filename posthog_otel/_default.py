"""The process-wide default client behind ``posthog_otel.capture(...)`` and friends.

Built lazily on first use from module attributes assigned by the app (``posthog_otel.api_key``,
``posthog_otel.host``, ``posthog_otel.debug``, ...), else from the environment, or explicitly
with :func:`setup`. Mirrors how posthog-python's module-level API behaves.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

from .context import Scope, observers

if TYPE_CHECKING:
    from .client import Client

# Module attributes of ``posthog_otel`` that a user may assign before the first capture.
_MODULE_OPTIONS = (
    "debug",
    "disabled",
    "sync_mode",
    "on_error",
    "before_send",
    "super_properties",
    "enable_exception_autocapture",
    "project_root",
    "in_app_modules",
    "disable_geoip",
    "flush_at",
    "flush_interval",
    "max_queue_size",
    "gzip",
    "max_retries",
    "timeout",
    "exclude_properties",
)

_lock = threading.Lock()
_client: Client | None = None


def _package() -> Any:
    return sys.modules["posthog_otel"]


def get_client() -> Client:
    """The default client, built on first use."""
    client = _client
    if client is not None:
        return client
    return _build()


def current_client() -> Client | None:
    """The default client if one was built; None otherwise (never builds one)."""
    return _client


def _build() -> Client:
    global _client
    with _lock:
        if _client is None:
            from .client import Client

            package = _package()
            api_key = getattr(package, "api_key", None) or getattr(package, "project_api_key", None)
            options = {
                name: getattr(package, name)
                for name in _MODULE_OPTIONS
                if getattr(package, name, None) is not None
            }
            _client = Client(api_key, getattr(package, "host", None), **options)
        return _client


def setup(api_key: str | None = None, host: str | None = None, **options: Any) -> Client:
    """Replace the default client with one built from these arguments (and the environment)."""
    global _client
    from .client import Client

    new = Client(api_key, host, **options)
    with _lock:
        old, _client = _client, new
    if old is not None:
        old.shutdown(1.0)
    return new


def set_client(client: Client | None) -> Client | None:
    """Install ``client`` as the default (None: forget it); returns the previous one."""
    global _client
    with _lock:
        old, _client = _client, client
    return old


def exception_autocapture_enabled() -> bool:
    client = _client
    if client is not None:
        return client.enable_exception_autocapture
    return bool(getattr(_package(), "enable_exception_autocapture", True))


def _capture_exit_exception(scope: Scope, exc: Exception) -> None:
    """Capture an Exception leaving ``scope`` once, with the scope's or the default client."""
    from . import errors  # loaded on the first exception, not at import

    if errors.is_captured(exc):
        return
    client = scope.nearest_client()
    if scope.capture_exceptions is not None:
        wanted = scope.capture_exceptions
    elif client is not None:
        wanted = client.enable_exception_autocapture
    else:
        wanted = exception_autocapture_enabled()
    if wanted:
        (client if client is not None else get_client()).capture_exception(exc, handled=False)


observers.on_exit_exception(_capture_exit_exception)
