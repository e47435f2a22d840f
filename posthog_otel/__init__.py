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
    send_feature_flags: Any = False,
    flags: Any = None,
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
        send_feature_flags=send_feature_flags,
        flags=flags,
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


# -- feature flags (evaluated by posthog-python, the ``flags`` extra; see posthog_otel.flags) --
# The default client's flag methods, with posthog-python's module-level signatures;
# ``distinct_id`` may be left out: it, the groups and the device id default to the context.

from .flags import FlagsUnavailableError  # noqa: E402

# Flag options as module attributes (read when the default client is first built; None: unset).
personal_api_key: str | None = None
secret_key: str | None = None
poll_interval: float | None = None
feature_flags_request_timeout_seconds: float | None = None
feature_flags_request_max_retries: int | None = None
enable_local_evaluation: bool | None = None
flag_fallback_cache_url: str | None = None
flag_definition_cache_provider: Any = None

__all__ += [
    "FlagsUnavailableError",
    "evaluate_flags",
    "feature_enabled",
    "feature_flag_definitions",
    "get_all_flags",
    "get_all_flags_and_payloads",
    "get_feature_flag",
    "get_feature_flag_payload",
    "get_feature_flag_result",
    "get_remote_config_payload",
    "load_feature_flags",
]


def feature_enabled(
    key: str,
    distinct_id: Any = None,
    groups: Mapping[str, Any] | None = None,
    person_properties: dict[str, Any] | None = None,
    group_properties: dict[str, dict[str, Any]] | None = None,
    only_evaluate_locally: bool = False,
    send_feature_flag_events: bool = True,
    disable_geoip: bool | None = None,
    device_id: str | None = None,
) -> bool | None:
    """Whether flag ``key`` is enabled for the user, with the default client."""
    return default_client.get_client().feature_enabled(
        key,
        distinct_id,
        groups=groups,
        person_properties=person_properties,
        group_properties=group_properties,
        only_evaluate_locally=only_evaluate_locally,
        send_feature_flag_events=send_feature_flag_events,
        disable_geoip=disable_geoip,
        device_id=device_id,
    )


def get_feature_flag(
    key: str,
    distinct_id: Any = None,
    groups: Mapping[str, Any] | None = None,
    person_properties: dict[str, Any] | None = None,
    group_properties: dict[str, dict[str, Any]] | None = None,
    only_evaluate_locally: bool = False,
    send_feature_flag_events: bool = True,
    disable_geoip: bool | None = None,
    device_id: str | None = None,
) -> bool | str | None:
    """The flag's value (variant, True/False or None) for the user, with the default client."""
    return default_client.get_client().get_feature_flag(
        key,
        distinct_id,
        groups=groups,
        person_properties=person_properties,
        group_properties=group_properties,
        only_evaluate_locally=only_evaluate_locally,
        send_feature_flag_events=send_feature_flag_events,
        disable_geoip=disable_geoip,
        device_id=device_id,
    )


def get_feature_flag_result(
    key: str,
    distinct_id: Any = None,
    groups: Mapping[str, Any] | None = None,
    person_properties: dict[str, Any] | None = None,
    group_properties: dict[str, dict[str, Any]] | None = None,
    only_evaluate_locally: bool = False,
    send_feature_flag_events: bool = True,
    disable_geoip: bool | None = None,
    device_id: str | None = None,
) -> Any:
    """posthog-python's ``FeatureFlagResult`` for the user, with the default client."""
    return default_client.get_client().get_feature_flag_result(
        key,
        distinct_id,
        groups=groups,
        person_properties=person_properties,
        group_properties=group_properties,
        only_evaluate_locally=only_evaluate_locally,
        send_feature_flag_events=send_feature_flag_events,
        disable_geoip=disable_geoip,
        device_id=device_id,
    )


def get_feature_flag_payload(
    key: str,
    distinct_id: Any = None,
    match_value: bool | str | None = None,
    groups: Mapping[str, Any] | None = None,
    person_properties: dict[str, Any] | None = None,
    group_properties: dict[str, dict[str, Any]] | None = None,
    only_evaluate_locally: bool = False,
    send_feature_flag_events: bool = True,
    disable_geoip: bool | None = None,
    device_id: str | None = None,
) -> Any:
    """The payload of the flag's value for the user, with the default client."""
    return default_client.get_client().get_feature_flag_payload(
        key,
        distinct_id,
        match_value=match_value,
        groups=groups,
        person_properties=person_properties,
        group_properties=group_properties,
        only_evaluate_locally=only_evaluate_locally,
        send_feature_flag_events=send_feature_flag_events,
        disable_geoip=disable_geoip,
        device_id=device_id,
    )


def get_all_flags(
    distinct_id: Any = None,
    groups: Mapping[str, Any] | None = None,
    person_properties: dict[str, Any] | None = None,
    group_properties: dict[str, dict[str, Any]] | None = None,
    only_evaluate_locally: bool = False,
    disable_geoip: bool | None = None,
    device_id: str | None = None,
    flag_keys_to_evaluate: list[str] | None = None,
) -> dict[str, bool | str] | None:
    """Every flag's value for the user, with the default client."""
    return default_client.get_client().get_all_flags(
        distinct_id,
        groups=groups,
        person_properties=person_properties,
        group_properties=group_properties,
        only_evaluate_locally=only_evaluate_locally,
        disable_geoip=disable_geoip,
        device_id=device_id,
        flag_keys_to_evaluate=flag_keys_to_evaluate,
    )


def get_all_flags_and_payloads(
    distinct_id: Any = None,
    groups: Mapping[str, Any] | None = None,
    person_properties: dict[str, Any] | None = None,
    group_properties: dict[str, dict[str, Any]] | None = None,
    only_evaluate_locally: bool = False,
    disable_geoip: bool | None = None,
    device_id: str | None = None,
    flag_keys_to_evaluate: list[str] | None = None,
) -> Any:
    """Every flag's value and payload for the user, with the default client."""
    return default_client.get_client().get_all_flags_and_payloads(
        distinct_id,
        groups=groups,
        person_properties=person_properties,
        group_properties=group_properties,
        only_evaluate_locally=only_evaluate_locally,
        disable_geoip=disable_geoip,
        device_id=device_id,
        flag_keys_to_evaluate=flag_keys_to_evaluate,
    )


def evaluate_flags(
    distinct_id: Any = None,
    groups: Mapping[str, Any] | None = None,
    person_properties: dict[str, Any] | None = None,
    group_properties: dict[str, dict[str, Any]] | None = None,
    only_evaluate_locally: bool = False,
    disable_geoip: bool | None = None,
    flag_keys: list[str] | None = None,
    device_id: str | None = None,
) -> Any:
    """A snapshot of the user's flags for ``capture(flags=...)``, with the default client."""
    return default_client.get_client().evaluate_flags(
        distinct_id,
        groups=groups,
        person_properties=person_properties,
        group_properties=group_properties,
        only_evaluate_locally=only_evaluate_locally,
        disable_geoip=disable_geoip,
        flag_keys=flag_keys,
        device_id=device_id,
    )


def get_remote_config_payload(key: str) -> Any:
    """The payload of remote config flag ``key``, with the default client."""
    return default_client.get_client().get_remote_config_payload(key)


def load_feature_flags() -> None:
    """Fetch flag definitions for local evaluation now, with the default client."""
    default_client.get_client().load_feature_flags()


def feature_flag_definitions() -> Any:
    """The flag definitions the default client loaded for local evaluation."""
    return default_client.get_client().feature_flag_definitions()
