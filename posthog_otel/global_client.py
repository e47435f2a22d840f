"""The process-wide default client behind ``posthog_otel.capture(...)`` and friends.

Built lazily on first use from module attributes assigned by the app (``posthog_otel.api_key``,
``posthog_otel.host``, ``posthog_otel.debug``, ...), else from the environment, or explicitly
with :func:`setup`. Mirrors how posthog-python's module-level API behaves. A default client
built lazily never raises into the app: an invalid setting (``POSTHOG_HOST=ftp://x``) is
logged once, as one line, and events are then dropped and counted as ``invalid_config``. The package reads
its own attributes for this module (:func:`read_module_options_from`), so nothing here
imports the package above it. Also captures exceptions leaving a context (an observer of
:mod:`posthog_otel.context`).

    client = get_client()           # built on first use
    previous = set_client(mine)     # tests: install another default
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import CLIENT_OPTIONS, DEFAULT_HOST
from .context import Scope, observers

if TYPE_CHECKING:
    from .client import Client

_logger = logging.getLogger("posthog.otel")
_lock = threading.Lock()
_client: Client | None = None


def _unset(name: str) -> Any:
    return None


# Reads a module attribute of ``posthog_otel`` (None when unset); set by the package.
_module_option: Callable[[str], Any] = _unset


def read_module_options_from(getter: Callable[[str], Any]) -> None:
    """Where module-level options (``posthog_otel.api_key = ...``) are read from."""
    global _module_option
    _module_option = getter


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

            read = _module_option
            # as posthog-python: project_api_key wins over api_key; blank means unset
            api_key = _text(read("project_api_key")) or _text(read("api_key"))
            options = {name: read(name) for name in CLIENT_OPTIONS if read(name) is not None}
            try:
                _client = Client(api_key, read("host"), **options)
            except ValueError as exc:
                _client = unsendable_client(exc)
        return _client


def unsendable_client(problem: Exception) -> Client:
    """A client that drops every event as ``invalid_config``; logs ``problem`` once."""
    from ._unsent import UnsentTransport
    from .client import Client

    _logger.error(
        "posthog-otel: invalid configuration: %s. Events are not sent (counted as dropped, "
        "reason invalid_config); fix the setting and restart.",
        problem,
    )
    # No key and a fixed host: nothing here reads the invalid environment again, and nothing
    # (feature flags included) can reach a server with the project's key.
    return Client("", DEFAULT_HOST, transport=UnsentTransport("invalid_config"))


def module_client() -> Client:
    """The default client for a module-level call: built on first use, then the module
    attributes posthog-python re-reads on every call (``disabled``, ``debug``,
    ``before_send``) applied when the app set them."""
    client = get_client()
    read = _module_option
    disabled = read("disabled")
    if disabled is not None and disabled != client.disabled:
        client.disabled = bool(disabled)
    debug = read("debug")
    if debug is not None and debug != client.debug:
        client.debug = bool(debug)
    before_send = read("before_send")
    if before_send is not None and before_send is not client.before_send:
        client.before_send = before_send if callable(before_send) else None
    return client


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


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
    configured = _module_option("enable_exception_autocapture")
    return True if configured is None else bool(configured)


def _capture_exit_exception(scope: Scope, exc: Exception) -> None:
    """Capture an Exception leaving ``scope`` once, with the scope's or the default client.

    Reported as handled, as posthog-python reports an exception leaving its ``new_context``:
    the context saw it and re-raised it, and what happens next is the app's business.
    """
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
        (client if client is not None else get_client()).capture_exception(exc)


observers.on_exit_exception(_capture_exit_exception)
