"""Feature flags at module level: posthog-python's ``posthog.feature_enabled(...)`` and friends.

The default client's flag methods (see :mod:`posthog_otel.flags`), with posthog-python's
module-level signatures; ``distinct_id`` may be left out: it, the groups and the device id
default to the current context. Re-exported by the package (``posthog_otel.feature_enabled``).

Usage::

    import posthog_otel as posthog

    with posthog.new_context():
        posthog.identify_context("user-123")
        if posthog.feature_enabled("new-checkout"):
            ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .global_client import module_client

__all__ = [
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
    return module_client().feature_enabled(
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
    return module_client().get_feature_flag(
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
    return module_client().get_feature_flag_result(
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
    return module_client().get_feature_flag_payload(
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
    return module_client().get_all_flags(
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
    return module_client().get_all_flags_and_payloads(
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
    return module_client().evaluate_flags(
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
    return module_client().get_remote_config_payload(key)


def load_feature_flags() -> None:
    """Fetch flag definitions for local evaluation now, with the default client."""
    module_client().load_feature_flags()


def feature_flag_definitions() -> Any:
    """The flag definitions the default client loaded for local evaluation."""
    return module_client().feature_flag_definitions()
