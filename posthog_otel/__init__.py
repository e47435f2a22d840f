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
from typing import TYPE_CHECKING, Any

from . import global_client
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
    from .flag_functions import (
        evaluate_flags,
        feature_enabled,
        feature_flag_definitions,
        get_all_flags,
        get_all_flags_and_payloads,
        get_feature_flag,
        get_feature_flag_payload,
        get_feature_flag_result,
        get_remote_config_payload,
        load_feature_flags,
    )
    from .flags import FlagsUnavailableError
    from .instrumentor import PosthogInstrumentor
    from .propagation.carriers import extract, inject
    from .propagation.propagator import PosthogPropagator
    from .spans.capture_span import capture_span
    from .spans.exporter import PosthogSpanExporter
    from .spans.genai_logs import PosthogGenAiLogProcessor
    from .spans.processor import PosthogSpanProcessor
    from .tracing.span import TracingSpan

__all__ = [
    "Client",
    "FlagsUnavailableError",
    "Posthog",
    "PosthogGenAiLogProcessor",
    "PosthogInstrumentor",
    "PosthogPropagator",
    "PosthogSpanExporter",
    "PosthogSpanProcessor",
    "Scope",
    "__version__",
    "alias",
    "capture",
    "capture_ai",
    "capture_exception",
    "capture_span",
    "current_scope",
    "evaluate_flags",
    "extract",
    "feature_enabled",
    "feature_flag_definitions",
    "flush",
    "get_active_span",
    "get_all_flags",
    "get_all_flags_and_payloads",
    "get_client",
    "get_context_device_id",
    "get_context_distinct_id",
    "get_context_session_id",
    "get_context_window_id",
    "get_feature_flag",
    "get_feature_flag_payload",
    "get_feature_flag_result",
    "get_remote_config_payload",
    "get_tags",
    "group_identify",
    "identify_context",
    "inject",
    "join",
    "load_feature_flags",
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
    "start_span",
    "tag",
]

_compat_names = (
    "disable_connection_reuse",
    "enable_keep_alive",
    "set_capture_exception_code_variables_context",
    "set_code_variables_detect_secrets_context",
    "set_code_variables_ignore_patterns_context",
    "set_code_variables_mask_patterns_context",
    "set_code_variables_mask_url_credentials_context",
    "set_socket_options",
)

_flag_function_names = (
    "evaluate_flags",
    "feature_enabled",
    "feature_flag_definitions",
    "get_all_flags",
    "get_all_flags_and_payloads",
    "get_feature_flag",
    "get_feature_flag_payload",
    "get_active_span",
    "get_feature_flag_result",
    "get_remote_config_payload",
    "load_feature_flags",
)

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
enable_exception_autocapture: bool | None = None
project_root: str | None = None
disable_geoip: bool | None = None
send: bool | None = None
is_server: bool | None = None
historical_migration: bool | None = None
log_captured_exceptions: bool | None = None
in_app_modules: Any = None
# feature flag options (the ``flags`` extra; see posthog_otel.flags)
personal_api_key: str | None = None
secret_key: str | None = None
poll_interval: float | None = None
feature_flags_request_timeout_seconds: float | None = None
feature_flags_request_max_retries: int | None = None
enable_local_evaluation: bool | None = None
flag_fallback_cache_url: str | None = None
flag_definition_cache_provider: Any = None
# spans to PostHog's /i/v1/traces: True or posthog-python's dict (see posthog_otel.tracing)
traces: Any = None

# The default client reads the attributes above when it is first built.
global_client.read_module_options_from(lambda name: globals().get(name))

_LAZY = {
    **{name: ".flag_functions" for name in _flag_function_names},
    "FlagsUnavailableError": ".flags",
    **{name: "._compat" for name in _compat_names},
    "Client": ".client",
    "Posthog": ".client",
    "PosthogInstrumentor": ".instrumentor",
    "PosthogSpanExporter": ".spans.exporter",
    "PosthogGenAiLogProcessor": ".spans.genai_logs",
    "PosthogSpanProcessor": ".spans.processor",
    "capture_span": ".spans.capture_span",
    "PosthogPropagator": ".propagation.propagator",
    "extract": ".propagation.carriers",
    "inject": ".propagation.carriers",
    "propagate_context": ".context.carry",
}


def __getattr__(name: str) -> Any:
    if name == "default_client":  # posthog-python's: the default client once built, or None
        return global_client.current_client()
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'posthog_otel' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value
    return value


def get_client() -> Client:
    """The default client (built on first use from module attributes or the environment)."""
    return global_client.get_client()


def setup(api_key: str | None = None, host: str | None = None, **options: Any) -> Client:
    """The default client, as posthog-python's ``setup()``: built from the module attributes
    (``posthog_otel.api_key`` …) on first use, the attributes set later (``disabled``,
    ``debug``, ``before_send``) applied. With arguments, a new default client built from them
    (options as :class:`Client`) replaces the current one."""
    if api_key is None and host is None and not options:
        return global_client.module_client()
    return global_client.setup(api_key, host, **options)


def capture(
    event: str,
    *,
    distinct_id: Any = None,
    properties: Mapping[str, Any] | None = None,
    timestamp: Any = None,
    uuid: Any = None,
    groups: Mapping[str, Any] | None = None,
    send_feature_flags: Any = False,
    disable_geoip: bool | None = None,
    flags: Any = None,
) -> str | None:
    """Capture an event with the default client; returns its uuid (None when dropped)."""
    return global_client.module_client().capture(
        event,
        distinct_id=distinct_id,
        properties=properties,
        timestamp=timestamp,
        uuid=uuid,
        groups=groups,
        send_feature_flags=send_feature_flags,
        disable_geoip=disable_geoip,
        flags=flags,
    )


def capture_ai(
    event: str,
    *,
    distinct_id: Any = None,
    properties: Mapping[str, Any] | None = None,
    timestamp: Any = None,
    uuid: Any = None,
    groups: Mapping[str, Any] | None = None,
    send_feature_flags: Any = False,
    disable_geoip: bool | None = None,
    flags: Any = None,
) -> str | None:
    """Capture an LLM analytics event (``$ai_generation``...) built by hand with the default
    client; as :func:`capture`, returns its uuid (None when dropped)."""
    return global_client.module_client().capture_ai(
        event,
        distinct_id=distinct_id,
        properties=properties,
        timestamp=timestamp,
        uuid=uuid,
        groups=groups,
        send_feature_flags=send_feature_flags,
        disable_geoip=disable_geoip,
        flags=flags,
    )


def capture_exception(
    exception: Any = None,
    *,
    distinct_id: Any = None,
    properties: Mapping[str, Any] | None = None,
    timestamp: Any = None,
    uuid: Any = None,
    groups: Mapping[str, Any] | None = None,
    send_feature_flags: Any = False,
    disable_geoip: bool | None = None,
    flags: Any = None,
) -> str | None:
    """Capture an exception (default: the one being handled; an exception, or a
    ``sys.exc_info()`` tuple) as ``$exception`` with the default client."""
    return global_client.module_client().capture_exception(
        exception,
        distinct_id=distinct_id,
        properties=properties,
        timestamp=timestamp,
        uuid=uuid,
        groups=groups,
        send_feature_flags=send_feature_flags,
        disable_geoip=disable_geoip,
        flags=flags,
    )


def set(
    *,
    distinct_id: Any = None,
    properties: Mapping[str, Any] | None = None,
    timestamp: Any = None,
    uuid: Any = None,
    disable_geoip: bool | None = None,
) -> str | None:
    """Set person properties with the default client."""
    return global_client.module_client().set(
        distinct_id=distinct_id,
        properties=properties,
        timestamp=timestamp,
        uuid=uuid,
        disable_geoip=disable_geoip,
    )


def set_once(
    *,
    distinct_id: Any = None,
    properties: Mapping[str, Any] | None = None,
    timestamp: Any = None,
    uuid: Any = None,
    disable_geoip: bool | None = None,
) -> str | None:
    """Set person properties once with the default client."""
    return global_client.module_client().set_once(
        distinct_id=distinct_id,
        properties=properties,
        timestamp=timestamp,
        uuid=uuid,
        disable_geoip=disable_geoip,
    )


def group_identify(
    group_type: Any,
    group_key: Any,
    properties: Any = None,
    timestamp: Any = None,
    uuid: Any = None,
    disable_geoip: bool | None = None,
    distinct_id: Any = None,
) -> str | None:
    """Create or update a group with the default client."""
    return global_client.module_client().group_identify(
        group_type, group_key, properties, timestamp, uuid, disable_geoip, distinct_id
    )


def alias(
    previous_id: Any,
    distinct_id: Any = None,
    timestamp: Any = None,
    uuid: Any = None,
    disable_geoip: bool | None = None,
) -> str | None:
    """Alias ``previous_id`` to ``distinct_id`` with the default client."""
    return global_client.module_client().alias(
        previous_id, distinct_id, timestamp, uuid, disable_geoip
    )


def flush(timeout_seconds: float | None = 10, *, timeout: float | None = None) -> bool:
    """Flush the default client, if one was built (``timeout`` is the older spelling)."""
    client = global_client.current_client()
    budget = timeout if timeout is not None else timeout_seconds
    return True if client is None else client.flush(budget)


def join() -> None:
    """Send what is queued and stop the default client's sender, if one was built."""
    client = global_client.current_client()
    if client is not None:
        client.join()


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop the default client, if one was built."""
    client = global_client.current_client()
    return True if client is None else client.shutdown(timeout)


_traces_applied: list[Any] = []


def _tracing_client() -> Client:
    """The default client, with a ``posthog_otel.traces`` set after it was built applied."""
    client = global_client.module_client()
    configured = globals().get("traces")
    if (
        configured is not None
        and not client.traces_enabled
        and not any(configured is applied for applied in _traces_applied)
    ):
        _traces_applied.append(configured)
        client.enable_traces(configured)
    return client


def start_span(
    name: str,
    *,
    kind: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    parent: Any = None,
    tracestate: str | None = None,
    start_time: Any = None,
) -> TracingSpan:
    """Start a span with the default client (posthog-python's ``start_span``): a real
    OpenTelemetry span when traces are on, an inert handle otherwise; never raises.

    ``parent``: a span, or an inbound W3C ``traceparent`` value (with ``tracestate``);
    default the current span. ``kind``: ``internal`` (default), ``server``, ``client``,
    ``producer``, ``consumer``. ``start_time``: a ``datetime`` or epoch seconds."""
    return _tracing_client().start_span(
        name,
        kind=kind,
        attributes=attributes,
        parent=parent,
        tracestate=tracestate,
        start_time=start_time,
    )


def get_active_span() -> TracingSpan | None:
    """The current span (OpenTelemetry's, as a ``start_span`` handle), or None."""
    from .tracing.span import get_active_span as active

    return active()
