"""The feature-flag methods of :class:`~posthog_otel.Client`, delegated to posthog-python.

A mixin, so :mod:`posthog_otel.client` stays about events: each method asks the client's
:class:`~posthog_otel.flags.FlagEvaluator`, which builds a posthog-python client on first use
(the ``flags`` extra). Signatures follow posthog-python 7.x; ``distinct_id`` may be left out:
it, the groups and the device id default to the current context. Each method raises
:class:`~posthog_otel.flags.FlagsUnavailableError` without posthog-python.

Usage::

    client = Client("phc_...", personal_api_key="phx_...")
    client.feature_enabled("new-checkout", "user-123")
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ._client_core import ClientCore
from .flags import flag_event_refiner

__all__ = ["FlagMethods"]

_logger = logging.getLogger("posthog.otel")


class FlagMethods(ClientCore):
    """posthog-python's flag API on a client that has a ``_flags`` evaluator."""

    def feature_enabled(
        self,
        key: str,
        distinct_id: Any = None,
        *,
        groups: Mapping[str, Any] | None = None,
        person_properties: dict[str, Any] | None = None,
        group_properties: dict[str, dict[str, Any]] | None = None,
        only_evaluate_locally: bool = False,
        send_feature_flag_events: bool = True,
        disable_geoip: bool | None = None,
        device_id: str | None = None,
    ) -> bool | None:
        """Whether flag ``key`` is enabled for the user (None when unknown)."""
        return self._flags.call(  # type: ignore[no-any-return]
            "feature_enabled",
            (key,),
            distinct_id,
            groups,
            device_id,
            person_properties=person_properties,
            group_properties=group_properties,
            only_evaluate_locally=only_evaluate_locally,
            send_feature_flag_events=send_feature_flag_events,
            disable_geoip=disable_geoip,
        )

    def get_feature_flag(
        self,
        key: str,
        distinct_id: Any = None,
        *,
        groups: Mapping[str, Any] | None = None,
        person_properties: dict[str, Any] | None = None,
        group_properties: dict[str, dict[str, Any]] | None = None,
        only_evaluate_locally: bool = False,
        send_feature_flag_events: bool = True,
        disable_geoip: bool | None = None,
        device_id: str | None = None,
    ) -> bool | str | None:
        """The flag's value for the user: its variant, True/False, or None when unknown."""
        return self._flags.call(  # type: ignore[no-any-return]
            "get_feature_flag",
            (key,),
            distinct_id,
            groups,
            device_id,
            person_properties=person_properties,
            group_properties=group_properties,
            only_evaluate_locally=only_evaluate_locally,
            send_feature_flag_events=send_feature_flag_events,
            disable_geoip=disable_geoip,
        )

    def get_feature_flag_result(
        self,
        key: str,
        distinct_id: Any = None,
        *,
        groups: Mapping[str, Any] | None = None,
        person_properties: dict[str, Any] | None = None,
        group_properties: dict[str, dict[str, Any]] | None = None,
        only_evaluate_locally: bool = False,
        send_feature_flag_events: bool = True,
        disable_geoip: bool | None = None,
        device_id: str | None = None,
    ) -> Any:
        """posthog-python's ``FeatureFlagResult`` (value, variant, payload), or None."""
        return self._flags.call(
            "get_feature_flag_result",
            (key,),
            distinct_id,
            groups,
            device_id,
            person_properties=person_properties,
            group_properties=group_properties,
            only_evaluate_locally=only_evaluate_locally,
            send_feature_flag_events=send_feature_flag_events,
            disable_geoip=disable_geoip,
        )

    def get_feature_flag_payload(
        self,
        key: str,
        distinct_id: Any = None,
        *,
        match_value: bool | str | None = None,
        groups: Mapping[str, Any] | None = None,
        person_properties: dict[str, Any] | None = None,
        group_properties: dict[str, dict[str, Any]] | None = None,
        only_evaluate_locally: bool = False,
        send_feature_flag_events: bool = False,
        disable_geoip: bool | None = None,
        device_id: str | None = None,
    ) -> Any:
        """The payload of the flag's value for the user (decoded JSON), or None."""
        return self._flags.call(
            "get_feature_flag_payload",
            (key,),
            distinct_id,
            groups,
            device_id,
            match_value=match_value,
            person_properties=person_properties,
            group_properties=group_properties,
            only_evaluate_locally=only_evaluate_locally,
            send_feature_flag_events=send_feature_flag_events,
            disable_geoip=disable_geoip,
        )

    def get_all_flags(
        self,
        distinct_id: Any = None,
        *,
        groups: Mapping[str, Any] | None = None,
        person_properties: dict[str, Any] | None = None,
        group_properties: dict[str, dict[str, Any]] | None = None,
        only_evaluate_locally: bool = False,
        disable_geoip: bool | None = None,
        flag_keys_to_evaluate: list[str] | None = None,
        device_id: str | None = None,
    ) -> dict[str, bool | str] | None:
        """Every flag's value for the user (sends no ``$feature_flag_called``)."""
        return self._flags.call(  # type: ignore[no-any-return]
            "get_all_flags",
            (),
            distinct_id,
            groups,
            device_id,
            person_properties=person_properties,
            group_properties=group_properties,
            only_evaluate_locally=only_evaluate_locally,
            disable_geoip=disable_geoip,
            flag_keys_to_evaluate=flag_keys_to_evaluate,
        )

    def get_all_flags_and_payloads(
        self,
        distinct_id: Any = None,
        *,
        groups: Mapping[str, Any] | None = None,
        person_properties: dict[str, Any] | None = None,
        group_properties: dict[str, dict[str, Any]] | None = None,
        only_evaluate_locally: bool = False,
        disable_geoip: bool | None = None,
        flag_keys_to_evaluate: list[str] | None = None,
        device_id: str | None = None,
    ) -> Any:
        """``{"featureFlags": {...}, "featureFlagPayloads": {...}}`` for the user."""
        return self._flags.call(
            "get_all_flags_and_payloads",
            (),
            distinct_id,
            groups,
            device_id,
            person_properties=person_properties,
            group_properties=group_properties,
            only_evaluate_locally=only_evaluate_locally,
            disable_geoip=disable_geoip,
            flag_keys_to_evaluate=flag_keys_to_evaluate,
        )

    def evaluate_flags(
        self,
        distinct_id: Any = None,
        *,
        groups: Mapping[str, Any] | None = None,
        person_properties: dict[str, Any] | None = None,
        group_properties: dict[str, dict[str, Any]] | None = None,
        only_evaluate_locally: bool = False,
        disable_geoip: bool | None = None,
        flag_keys: list[str] | None = None,
        device_id: str | None = None,
    ) -> Any:
        """A snapshot of the user's flags (one request); pass it to ``capture(flags=...)``."""
        return self._flags.call(
            "evaluate_flags",
            (),
            distinct_id,
            groups,
            device_id,
            person_properties=person_properties,
            group_properties=group_properties,
            only_evaluate_locally=only_evaluate_locally,
            disable_geoip=disable_geoip,
            flag_keys=flag_keys,
        )

    def get_remote_config_payload(self, key: str) -> Any:
        """The payload of remote config flag ``key`` (needs ``secret_key``)."""
        return self._flags.plain("get_remote_config_payload", key)

    def load_feature_flags(self) -> None:
        """Fetch the flag definitions for local evaluation now (needs ``personal_api_key``)."""
        self._flags.plain("load_feature_flags")

    def feature_flag_definitions(self) -> Any:
        """The flag definitions loaded for local evaluation, or None before they load."""
        return self._flags.plain("feature_flag_definitions")

    def _feature_flag_properties(
        self,
        distinct_id: str,
        groups: Mapping[str, Any] | None,
        disable_geoip: bool | None,
        send_feature_flags: Any,
        flags: Any,
    ) -> dict[str, Any]:
        """``$feature/<key>`` and ``$active_feature_flags`` for ``capture(send_feature_flags=
        ...)`` or ``capture(flags=snapshot)``; none (logged) when flags are unavailable."""
        try:
            return self._flags.event_properties(
                distinct_id, groups, disable_geoip, send_feature_flags, flags
            )
        except Exception as exc:
            _logger.warning("posthog-otel sends this event without feature flags: %s", exc)
            return {}

    def _capture_flag_event(self, event: str, kwargs: dict[str, Any]) -> str | None:
        """An event posthog-python's flag client made (``$feature_flag_called``), sent by us.

        An event our ``before_send`` drops is reported back in ``_before_send_drops``, so
        posthog-python keeps it deduplicated instead of offering it again.
        """
        try:
            sent = self._capture(
                event,
                kwargs.get("distinct_id"),
                kwargs.get("properties"),
                kwargs.get("timestamp"),
                kwargs.get("uuid"),
                kwargs.get("groups") or None,
                kwargs.get("disable_geoip"),
                refine=flag_event_refiner(kwargs),
            )
            drops = kwargs.get("_before_send_drops")
            if sent is None and self.before_send is not None and isinstance(drops, list):
                drops.append(event)
            return sent
        except Exception:
            _logger.warning("posthog-otel could not capture %r", event, exc_info=True)
            return None
