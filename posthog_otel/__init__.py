"""posthog-otel: PostHog's server-side context API on top of OpenTelemetry.

Drop-in for posthog-python v6's contexts and module-level API::

    import posthog_otel as posthog

    posthog.api_key = "phc_..."            # or POSTHOG_API_KEY / POSTHOG_HOST in the environment

    with posthog.new_context():
        posthog.identify_context("user-123")
        posthog.set_context_session(session_id)
        posthog.tag("plan", "pro")
        posthog.capture("order_completed")  # distinct id, session, tags, $trace_id, $span_id

The current context lives in the OpenTelemetry Context, so it follows threads (with contrib's
``ThreadingInstrumentor``), asyncio tasks and everything else OpenTelemetry carries.

Importing this package is cheap: the client, its HTTP stack and OpenTelemetry SDK pieces load
on first use.
"""

from __future__ import annotations

import os as _os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import default_client
from .context import (
    Scope,
    current_scope,
    get_context_device_id,
    get_context_distinct_id,
    get_context_session_id,
    get_context_window_id,
    get_tags,
    identify_context,
    new_context,
    scoped,
    set_context_device_id,
    set_context_session,
    set_context_window_id,
    tag,
)
from .version import __version__


def _source_checkout_path() -> None:
    """Let ``posthog_otel.instrumentors`` import from a source checkout too.

    The repository keeps it in the top-level ``instrumentors/`` folder, which setuptools
    installs inside the package. When Python imports this package from a clone's root (``python
    -m ...``, ``opentelemetry-instrument`` and ``manage.py`` put the current folder first on
    ``sys.path``) instead of the installed copy, the clone's root joins the package path, so
    ``posthog_otel.instrumentors`` is that folder, as in the installed package.
    """
    here = _os.path.dirname(_os.path.abspath(__file__))
    root = _os.path.dirname(here)
    if not _os.path.isdir(_os.path.join(here, "instrumentors")) and _os.path.isfile(
        _os.path.join(root, "instrumentors", "__init__.py")
    ):
        __path__.append(root)


_source_checkout_path()

if TYPE_CHECKING:
    from .client import Client, Posthog
    from .context.carry import propagate_context
    from .instrumentor import PosthogInstrumentor
    from .propagation.carriers import extract, inject
    from .propagation.propagator import PosthogPropagator
    from .spans.capture_span import capture_span
    from .spans.exporter import PosthogSpanExporter
    from .spans.processor import PosthogSpanProcessor

__all__ = [
    "Client",
    "Posthog",
    "PosthogInstrumentor",
    "PosthogPropagator",
    "PosthogSpanExporter",
    "PosthogSpanProcessor",
    "Scope",
    "__version__",
    "alias",
    "capture",
    "capture_exception",
    "capture_span",
    "current_scope",
    "extract",
    "flush",
    "get_client",
    "get_context_device_id",
    "get_context_distinct_id",
    "get_context_session_id",
    "get_context_window_id",
    "get_tags",
    "group_identify",
    "identify_context",
    "inject",
    "new_context",
    "propagate_context",
    "scoped",
    "set",
    "set_context_device_id",
    "set_context_session",
    "set_context_window_id",
    "set_once",
    "setup",
    "shutdown",
    "tag",
]

# Module-level configuration, read when the default client is first built (as posthog-python).
api_key: str | None = None
project_api_key: str | None = None
host: str | None = None
debug: bool | None = None
disabled: bool | None = None
sync_mode: bool | None = None
on_error: Any = None
before_send: Any = None
super_properties: Mapping[str, Any] | None = None
enable_exception_autocapture: bool = True
project_root: str | None = None
disable_geoip: bool | None = None

# The default client reads the attributes above when it is first built.
default_client.read_module_options_from(lambda name: globals().get(name))

_LAZY = {
    "Client": ".client",
    "Posthog": ".client",
    "PosthogInstrumentor": ".instrumentor",
    "PosthogSpanExporter": ".spans.exporter",
    "PosthogSpanProcessor": ".spans.processor",
    "capture_span": ".spans.capture_span",
    "PosthogPropagator": ".propagation.propagator",
    "extract": ".propagation.carriers",
    "inject": ".propagation.carriers",
    "propagate_context": ".context.carry",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'posthog_otel' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def get_client() -> Client:
    """The default client (built on first use from module attributes or the environment)."""
    return default_client.get_client()


def setup(api_key: str | None = None, host: str | None = None, **options: Any) -> Client:
    """Configure the default client explicitly; returns it. Options as :class:`Client`."""
    return default_client.setup(api_key, host, **options)


def capture(
    event: str,
    *,
    distinct_id: Any = None,
    properties: Mapping[str, Any] | None = None,
    timestamp: datetime | float | None = None,
    uuid: Any = None,
    groups: Mapping[str, str] | None = None,
    disable_geoip: bool | None = None,
) -> str | None:
    """Capture an event with the default client; returns its uuid."""
    return default_client.get_client().capture(
        event,
        distinct_id=distinct_id,
        properties=properties,
        timestamp=timestamp,
        uuid=uuid,
        groups=groups,
        disable_geoip=disable_geoip,
    )


def capture_exception(
    exception: BaseException | None = None,
    *,
    distinct_id: Any = None,
    properties: Mapping[str, Any] | None = None,
    timestamp: datetime | float | None = None,
    uuid: Any = None,
    groups: Mapping[str, str] | None = None,
) -> str | None:
    """Capture an exception (default: the one being handled) as ``$exception``."""
    return default_client.get_client().capture_exception(
        exception,
        distinct_id=distinct_id,
        properties=properties,
        timestamp=timestamp,
        uuid=uuid,
        groups=groups,
    )


def set(*, distinct_id: Any = None, properties: Mapping[str, Any] | None = None) -> str | None:
    """Set person properties with the default client."""
    return default_client.get_client().set(distinct_id=distinct_id, properties=properties)


def set_once(*, distinct_id: Any = None, properties: Mapping[str, Any] | None = None) -> str | None:
    """Set person properties once with the default client."""
    return default_client.get_client().set_once(distinct_id=distinct_id, properties=properties)


def group_identify(
    group_type: str,
    group_key: str,
    properties: Mapping[str, Any] | None = None,
    *,
    distinct_id: Any = None,
) -> str | None:
    """Create or update a group with the default client."""
    return default_client.get_client().group_identify(
        group_type, group_key, properties, distinct_id=distinct_id
    )


def alias(previous_id: str, distinct_id: Any = None) -> str | None:
    """Alias ``previous_id`` to ``distinct_id`` with the default client."""
    return default_client.get_client().alias(previous_id, distinct_id)


def flush(timeout: float | None = None) -> bool:
    """Flush the default client, if one was built."""
    client = default_client.current_client()
    return True if client is None else client.flush(timeout)


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop the default client, if one was built."""
    client = default_client.current_client()
    return True if client is None else client.shutdown(timeout)
