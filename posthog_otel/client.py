"""The PostHog client: capture events, exceptions and person/group updates.

Method names, signatures and return values follow posthog-python v6: ``capture`` returns the
event's uuid, the distinct id comes from the argument, else the current context, else a random
uuid with ``$process_person_profile: false`` (a personless event). Nothing here raises into the
app or waits for the network: events are queued for a background sender
(:mod:`posthog_otel.delivery.transport`).

Usage::

    from posthog_otel import Client, new_context, identify_context

    client = Client("phc_...", host="https://eu.i.posthog.com")
    with new_context():
        identify_context("user-123")
        client.capture("order_completed", properties={"total": 42})
    client.shutdown()

With no API key the client still works in-process (contexts, uuids, ``before_send``) and says
once that events are not sent.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid as uuid_module
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from opentelemetry import context as otel_context

from . import errors
from ._events import (
    apply_geoip,
    event_timestamp,
    event_uuid,
    identify_from_context,
    remove_excluded,
    run_before_send,
    system_properties,
)
from ._excepthooks import ExceptHooks
from ._unsent import UnsentTransport
from .config import ClientSettings, name_matcher
from .context import current_scope, get_context_distinct_id

__all__ = ["Client", "EventTransport", "Posthog"]

_logger = logging.getLogger("posthog_otel")
_not_sending_warned = False


class EventTransport(Protocol):
    """Where a client's events go: the HTTP transport, or memory in tests."""

    def enqueue(self, event: dict[str, Any]) -> bool: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def shutdown(self, timeout: float | None = None) -> bool: ...

    def stats(self) -> dict[str, Any]: ...


class Client:
    """A PostHog project client. See the module docstring and the README's option table."""

    def __init__(
        self,
        api_key: str | None = None,
        host: str | None = None,
        *,
        transport: EventTransport | None = None,
        **options: Any,
    ) -> None:
        settings = ClientSettings.build(api_key, host, **options)
        self._settings = settings
        self.enable_exception_autocapture = settings.enable_exception_autocapture
        self._before_send = settings.before_send
        self._super_properties = dict(settings.super_properties or {})
        self._system = system_properties(settings)
        self._excluded = name_matcher(settings.exclude_properties)
        self._frames = errors.FrameOptions(
            project_root=settings.project_root or os.getcwd(),
            in_app_modules=settings.in_app_modules,
        )
        if settings.debug:
            _enable_debug_logging()
        self._excepthooks: ExceptHooks | None = None
        if settings.enable_exception_autocapture and not settings.disabled:
            self._excepthooks = ExceptHooks(self.capture_uncaught_exception)
        self._transport: EventTransport
        if transport is not None:
            self._transport = transport
        elif settings.api_key and not settings.disabled:
            from .delivery.transport import Transport

            self._transport = Transport(settings)
        else:
            self._transport = UnsentTransport()
            if not settings.disabled:
                _warn_not_sending()

    def __repr__(self) -> str:
        return (
            f"Client(host={self.host!r}, api_key=<{'set' if self._settings.api_key else 'unset'}>)"
        )

    @property
    def host(self) -> str | None:
        return self._settings.host

    @property
    def settings(self) -> ClientSettings:
        return self._settings

    @property
    def frame_options(self) -> errors.FrameOptions:
        """How this client judges frames (``project_root``, ``in_app_modules``)."""
        return self._frames

    @property
    def disabled(self) -> bool:
        return self._settings.disabled

    # -- events ---------------------------------------------------------------------------

    def capture(
        self,
        event: str,
        *,
        distinct_id: Any = None,
        properties: Mapping[str, Any] | None = None,
        timestamp: datetime | float | None = None,
        uuid: Any = None,
        groups: Mapping[str, str] | None = None,
        disable_geoip: bool | None = None,
    ) -> str | None:
        """Capture ``event``; returns its uuid, or None when disabled or dropped."""
        try:
            return self._capture(
                event, distinct_id, properties, timestamp, uuid, groups, disable_geoip
            )
        except Exception:
            _logger.warning("posthog-otel could not capture %r", event, exc_info=True)
            return None

    def capture_exception(
        self,
        exception: BaseException | tuple[Any, Any, Any] | None = None,
        *,
        distinct_id: Any = None,
        properties: Mapping[str, Any] | None = None,
        timestamp: datetime | float | None = None,
        uuid: Any = None,
        groups: Mapping[str, str] | None = None,
        disable_geoip: bool | None = None,
        handled: bool = True,
    ) -> str | None:
        """Capture an exception as ``$exception``, once per exception object.

        ``exception`` is an exception or a ``sys.exc_info()`` tuple; by default, the exception
        being handled. Returns the event uuid, or None when there is no exception, it was
        already captured (by a context, a span hook or middleware), or the client is disabled.
        """
        return self._capture_exception_event(
            exception if exception is not None else sys.exc_info(),
            distinct_id=distinct_id,
            properties=properties,
            timestamp=timestamp,
            uuid=uuid,
            groups=groups,
            disable_geoip=disable_geoip,
            handled=handled,
        )

    def capture_uncaught_exception(
        self,
        exception: BaseException | tuple[Any, Any, Any],
        *,
        in_thread: bool = False,
        properties: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Capture an exception that ended the program (or, ``in_thread``, a thread).

        As posthog-python's excepthooks send it: not handled, mechanism
        ``onuncaughtexception``, level ``fatal`` (``error`` for a thread) and
        ``$exception_source``.
        """
        source = "python.threading_excepthook" if in_thread else "python.sys_excepthook"
        return self._capture_exception_event(
            exception,
            properties=properties,
            handled=False,
            mechanism_type="onuncaughtexception",
            level="error" if in_thread else "fatal",
            source=source,
        )

    def _capture_exception_event(
        self,
        exception: Any,
        *,
        distinct_id: Any = None,
        properties: Mapping[str, Any] | None = None,
        timestamp: datetime | float | None = None,
        uuid: Any = None,
        groups: Mapping[str, str] | None = None,
        disable_geoip: bool | None = None,
        handled: bool = True,
        mechanism_type: str = "generic",
        level: str = "error",
        source: str | None = None,
    ) -> str | None:
        try:
            found = errors.exc_info_of(exception)
            if found is None or self._settings.disabled:
                return None
            if not errors.mark_captured(found[0]):
                return None
            props: dict[str, Any] = {
                "$exception_list": errors.exception_list(
                    exception, handled=handled, mechanism_type=mechanism_type, options=self._frames
                ),
                "$exception_level": level,
            }
            if source:
                props["$exception_source"] = source
            if properties:
                props.update(properties)
            return self._capture(
                "$exception", distinct_id, props, timestamp, uuid, groups, disable_geoip
            )
        except Exception:
            _logger.warning("posthog-otel could not capture an exception", exc_info=True)
            return None

    def capture_exception_list(
        self,
        exception_list: list[dict[str, Any]],
        *,
        distinct_id: Any = None,
        properties: Mapping[str, Any] | None = None,
        timestamp: datetime | float | None = None,
    ) -> str | None:
        """Capture an already built ``$exception_list`` (from a span or another process)."""
        props: dict[str, Any] = {"$exception_list": exception_list, "$exception_level": "error"}
        if properties:
            props.update(properties)
        return self.capture(
            "$exception", distinct_id=distinct_id, properties=props, timestamp=timestamp
        )

    def set(
        self, *, distinct_id: Any = None, properties: Mapping[str, Any] | None = None
    ) -> str | None:
        """Set person properties (``$set``). Sends nothing when no distinct id is known."""
        return self._person_update("$set", distinct_id, properties)

    def set_once(
        self, *, distinct_id: Any = None, properties: Mapping[str, Any] | None = None
    ) -> str | None:
        """Set person properties only if unset (``$set_once``); nothing without a distinct id."""
        return self._person_update("$set_once", distinct_id, properties)

    def group_identify(
        self,
        group_type: str,
        group_key: str,
        properties: Mapping[str, Any] | None = None,
        *,
        distinct_id: Any = None,
        timestamp: datetime | float | None = None,
        uuid: Any = None,
    ) -> str | None:
        """Create or update a group (``$groupidentify``)."""
        props = {
            "$group_type": group_type,
            "$group_key": group_key,
            "$group_set": dict(properties or {}),
        }
        return self.capture(
            "$groupidentify",
            distinct_id=distinct_id,
            properties=props,
            timestamp=timestamp,
            uuid=uuid,
        )

    def alias(self, previous_id: str, distinct_id: Any = None) -> str | None:
        """Merge ``previous_id`` into ``distinct_id`` (default: the context's distinct id)."""
        try:
            new_id = distinct_id if distinct_id is not None else get_context_distinct_id()
            if new_id is None or self._settings.disabled:
                return None
            props = {"distinct_id": str(previous_id), "alias": str(new_id)}
            return self._capture("$create_alias", str(previous_id), props, None, None, None, None)
        except Exception:
            _logger.warning("posthog-otel could not send an alias", exc_info=True)
            return None

    def _person_update(
        self, kind: str, distinct_id: Any, properties: Mapping[str, Any] | None
    ) -> str | None:
        try:
            resolved = distinct_id if distinct_id is not None else get_context_distinct_id()
            if resolved is None or self._settings.disabled:
                return None
            return self._capture(
                kind,
                resolved,
                None,
                None,
                None,
                None,
                None,
                top_level={kind: dict(properties or {})},
            )
        except Exception:
            _logger.warning("posthog-otel could not send %s", kind, exc_info=True)
            return None

    # -- delivery -------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Send queued events now; True when all were handled within ``timeout`` seconds."""
        try:
            return self._transport.flush(timeout)
        except Exception:
            _logger.warning("posthog-otel flush failed", exc_info=True)
            return False

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush (default budget ``shutdown_timeout``) and stop the sender."""
        if self._excepthooks is not None:
            self._excepthooks.close()
        try:
            return self._transport.shutdown(timeout)
        except Exception:
            _logger.warning("posthog-otel shutdown failed", exc_info=True)
            return False

    def stats(self) -> dict[str, Any]:
        """Delivery counters: captured, queued, sent, batches, retries, dropped by reason."""
        return self._transport.stats()

    # -- the one place events are built ---------------------------------------------------

    def _capture(
        self,
        event: str,
        distinct_id: Any,
        properties: Mapping[str, Any] | None,
        timestamp: datetime | float | None,
        uuid: Any,
        groups: Mapping[str, str] | None,
        disable_geoip: bool | None,
        *,
        top_level: dict[str, Any] | None = None,
    ) -> str | None:
        if self._settings.disabled:
            return None
        ctx = otel_context.get_current()
        scope = current_scope(ctx)
        props: dict[str, Any] = dict(self._super_properties) if self._super_properties else {}
        resolved = scope.resolve() if scope is not None else None
        if resolved is not None:
            if resolved.tags:
                props.update(resolved.tags)
            props["$context_tags"] = list(resolved.tags)
        if properties:
            props.update(properties)
        props.update(self._system)
        apply_geoip(props, disable_geoip)
        distinct_id = identify_from_context(ctx, resolved, props, distinct_id, groups)
        return self._emit(event, distinct_id, props, timestamp, uuid, top_level)

    def capture_raw(
        self,
        event: str,
        *,
        distinct_id: Any = None,
        properties: Mapping[str, Any] | None = None,
        timestamp: datetime | float | None = None,
        uuid: Any = None,
    ) -> str | None:
        """Capture an event built elsewhere, without reading the current context.

        For exporters and bridges that map spans or log records to events: ``properties``
        already hold the tags, session and trace ids of their source. Library properties
        (``$lib``, …) and ``super_properties`` are added; no distinct id makes it personless.
        """
        try:
            if self._settings.disabled:
                return None
            props: dict[str, Any] = dict(self._super_properties) if self._super_properties else {}
            if properties:
                props.update(properties)
            props.update(self._system)
            return self._emit(event, distinct_id, props, timestamp, uuid, None)
        except Exception:
            _logger.warning("posthog-otel could not capture %r", event, exc_info=True)
            return None

    def _emit(
        self,
        event: str,
        distinct_id: Any,
        props: dict[str, Any],
        timestamp: datetime | float | None,
        uuid: Any,
        top_level: dict[str, Any] | None,
    ) -> str | None:
        """The one place an event dict is finished and queued."""
        if not isinstance(event, str) or not event:
            raise ValueError(f"event name must be a non-empty string, got {event!r}")
        if distinct_id is None:
            distinct_id = str(uuid_module.uuid4())
            props["$process_person_profile"] = False
        elif not isinstance(distinct_id, str):
            distinct_id = str(distinct_id)
        if self._excluded is not None:
            remove_excluded(props, self._excluded, self._system)
        uuid_text = event_uuid(uuid)
        message: dict[str, Any] = {
            "event": event,
            "distinct_id": distinct_id,
            "properties": props,
            "timestamp": time.time() if timestamp is None else event_timestamp(timestamp),
            "uuid": uuid_text,
        }
        if top_level:
            message.update(top_level)
        if self._before_send is not None:
            kept = run_before_send(self._before_send, message)
            if kept is None:
                return None
            message = kept
        self._transport.enqueue(message)
        return uuid_text


Posthog = Client


def _warn_not_sending() -> None:
    global _not_sending_warned
    if _not_sending_warned:
        return
    _not_sending_warned = True
    _logger.warning(
        "posthog-otel: no PostHog API key is configured, so events are NOT sent. Contexts, "
        "propagation and span stamping still work. Set POSTHOG_API_KEY (and POSTHOG_HOST, e.g. "
        "http://127.0.0.1:8010 for the local sink) to deliver events."
    )


def _enable_debug_logging() -> None:
    if not _logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        _logger.addHandler(handler)
    _logger.setLevel(logging.DEBUG)
