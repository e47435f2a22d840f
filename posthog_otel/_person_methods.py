"""Person and group updates of :class:`~posthog_otel.Client`: ``set``, ``set_once``,
``group_identify`` and ``alias``, as posthog-python builds them.

A mixin, so :mod:`posthog_otel.client` stays about building and queueing events.
``$set``/``$set_once`` carry the context's tags and session; ``$groupidentify`` is always
personful; calls without the ids they need are dropped with a warning.

Usage::

    client.set(distinct_id="user-1", properties={"plan": "pro"})
    client.group_identify("company", "acme", {"seats": 10})
    client.alias("anonymous-42", "user-1")
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context

from ._client_core import ClientCore
from ._events import resolve_distinct_id, resolve_scope, stringify_id, with_tags

__all__ = ["PersonMethods"]

_logger = logging.getLogger("posthog.otel")


class PersonMethods(ClientCore):
    """``set``, ``set_once``, ``group_identify``, ``alias``."""

    def set(
        self,
        *,
        distinct_id: Any = None,
        properties: Mapping[str, Any] | None = None,
        timestamp: Any = None,
        uuid: Any = None,
        disable_geoip: bool | None = None,
    ) -> str | None:
        """Set person properties (``$set``); nothing without a person or properties."""
        return self._person_update("$set", distinct_id, properties, timestamp, uuid, disable_geoip)

    def set_once(
        self,
        *,
        distinct_id: Any = None,
        properties: Mapping[str, Any] | None = None,
        timestamp: Any = None,
        uuid: Any = None,
        disable_geoip: bool | None = None,
    ) -> str | None:
        """Set person properties only if unset (``$set_once``); as :meth:`set`."""
        return self._person_update(
            "$set_once", distinct_id, properties, timestamp, uuid, disable_geoip
        )

    def group_identify(
        self,
        group_type: Any,
        group_key: Any,
        properties: Any = None,
        timestamp: Any = None,
        uuid: Any = None,
        disable_geoip: bool | None = None,
        distinct_id: Any = None,
    ) -> str | None:
        """Create or update a group (``$groupidentify``); dropped without a type or key."""
        try:
            for name, value in (("group_type", group_type), ("group_key", group_key)):
                if not stringify_id(value):
                    _logger.warning(
                        "group_identify() called without a %s, dropping the $groupidentify event",
                        name,
                    )
                    return None
            ctx = otel_context.get_current()
            resolved = resolve_scope(ctx)
            props: dict[str, Any] = {
                "$group_type": group_type,
                "$group_key": group_key,
                "$group_set": properties or {},
            }
            if resolved is not None and resolved.session_id:
                props["$session_id"] = str(resolved.session_id)
            person, _personless = resolve_distinct_id(distinct_id, resolved, ctx)
            message = {"event": "$groupidentify", "properties": props, "distinct_id": person}
            return self._enqueue(message, timestamp, uuid, disable_geoip)
        except Exception:
            if self._debug:
                raise
            _logger.exception("posthog-otel could not send a group update")
            return None

    def alias(
        self,
        previous_id: Any,
        distinct_id: Any = None,
        timestamp: Any = None,
        uuid: Any = None,
        disable_geoip: bool | None = None,
    ) -> str | None:
        """Merge ``previous_id`` into ``distinct_id`` (default: the context's distinct id)."""
        try:
            previous = stringify_id(previous_id)
            if not previous:
                _logger.warning(
                    "alias() called without a previous_id, dropping the $create_alias event"
                )
                return None
            ctx = otel_context.get_current()
            resolved = resolve_scope(ctx)
            target, personless = resolve_distinct_id(distinct_id, resolved, ctx)
            if personless:
                _logger.warning(
                    "alias() called without a distinct_id, dropping the $create_alias event"
                )
                return None
            props: dict[str, Any] = {"distinct_id": previous, "alias": target}
            if resolved is not None and resolved.session_id:
                props["$session_id"] = str(resolved.session_id)
            message = {"event": "$create_alias", "properties": props, "distinct_id": previous}
            return self._enqueue(message, timestamp, uuid, disable_geoip)
        except Exception:
            if self._debug:
                raise
            _logger.exception("posthog-otel could not send an alias")
            return None

    def _person_update(
        self,
        kind: str,
        distinct_id: Any,
        properties: Mapping[str, Any] | None,
        timestamp: Any,
        uuid: Any,
        disable_geoip: bool | None,
    ) -> str | None:
        try:
            ctx = otel_context.get_current()
            resolved = resolve_scope(ctx)
            values = with_tags(resolved, dict(properties or {}))
            person, personless = resolve_distinct_id(distinct_id, resolved, ctx)
            if personless or not values:
                return None
            message = {"distinct_id": person, kind: values, "event": kind}
            return self._enqueue(message, timestamp, uuid, disable_geoip)
        except Exception:
            if self._debug:
                raise
            _logger.exception("posthog-otel could not send %s", kind)
            return None
