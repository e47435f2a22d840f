"""The PostHog client: capture events, exceptions and person/group updates.

A drop-in for posthog-python 7.x's ``Client``/``Posthog``: the same constructor parameters
(by name and position), the same methods and arguments, the same events on the wire (proven
by ``tests/parity``, which runs both). The distinct id comes from the argument, else the
current context, else a random uuid with ``$process_person_profile: false``. Nothing here
raises into the app (unless ``debug=True``, as in posthog-python) or waits for the network:
events are queued for a background sender (:mod:`posthog_otel.delivery.transport`).

Usage::

    from posthog_otel import Client

    client = Client("phc_...", host="https://eu.i.posthog.com")
    with client.new_context():
        client.identify_context("user-123")
        client.capture("order_completed", properties={"total": 42})
    client.shutdown()

Without an API key the client is disabled, as posthog-python's is: calls return None.

The event pipeline (``_capture`` -> ``_enqueue``) stays in this one class so its order can be
read against posthog-python's; exceptions, person and group updates and feature flags are
mixins in their own modules.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from opentelemetry import context as otel_context

from . import context as _context
from . import errors
from ._events import (
    LIBRARY,
    add_trace_ids,
    clean,
    event_timestamp,
    event_uuid,
    release_id,
    remove_excluded,
    resolve_distinct_id,
    resolve_scope,
    run_before_send,
    stringify_id,
    with_context,
)
from ._excepthooks import ExceptHooks
from ._exception_methods import ExceptionMethods
from ._flag_methods import FlagMethods
from ._options import CLIENT_SIGNATURE, bind_client_arguments, split_options
from ._person_methods import PersonMethods
from ._platform import runtime_properties
from ._trace_methods import TraceMethods
from ._unsent import UnsentTransport
from .config import ClientSettings, name_matcher
from .delivery.encoding import timestamp_iso
from .flags import FlagEvaluator

__all__ = ["Client", "EventTransport", "Posthog"]

_logger = logging.getLogger("posthog.otel")
_not_sending_warned = False


class EventTransport(Protocol):
    """Where a client's events go: the HTTP transport, or memory in tests."""

    def enqueue(self, event: dict[str, Any]) -> bool: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def shutdown(self, timeout: float | None = None) -> bool: ...

    def stats(self) -> dict[str, Any]: ...


class SignalExport(Protocol):
    """Another signal this client's project receives (OTLP logs): counted in
    ``stats()[name]``, flushed and shut down with the client's events."""

    def flush(self, timeout: float | None = None) -> bool: ...

    def shutdown(self, timeout: float | None = None) -> bool: ...

    def stats(self) -> dict[str, Any]: ...


class Client(ExceptionMethods, PersonMethods, FlagMethods, TraceMethods):
    """A PostHog project client. See the module docstring and the README's option table.

    Exceptions (``capture_exception`` …), person and group updates (``set``, ``alias`` …) and
    feature flags (``feature_enabled`` …) come from mixins, one module each; this class builds
    and queues events."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        given = bind_client_arguments(args, kwargs)
        transport: EventTransport | None = given.pop("transport", None)
        api_key = given.pop("project_api_key", None)
        alias = given.pop("api_key", None)
        host = given.pop("host", None)
        options, _ignored = split_options(given)
        settings = ClientSettings.build(
            api_key if api_key is not None else alias, host, strict=False, **options
        )
        self._settings = settings
        self.enable_exception_autocapture = settings.enable_exception_autocapture
        self.before_send = settings.before_send
        self.super_properties: Mapping[str, Any] | None = settings.super_properties
        self.send = settings.send
        self._runtime = runtime_properties()
        self._release_id = release_id()
        self._excluded = name_matcher(settings.exclude_properties)
        self._frames = errors.FrameOptions(
            project_root=settings.project_root or os.getcwd(),
            in_app_modules=settings.in_app_modules,
        )
        self._debug = False
        self.debug = settings.debug
        self._flags = FlagEvaluator(settings, self._capture_flag_event)
        self._excepthooks: ExceptHooks | None = None
        if settings.enable_exception_autocapture and not settings.disabled:
            self._excepthooks = ExceptHooks(self.capture_uncaught_exception)
        self._exports: dict[str, SignalExport] = {}
        self._transport: EventTransport
        if transport is not None:
            self._transport = transport
            self._disabled = settings.disabled
        elif settings.api_key and not settings.disabled:
            from .delivery.transport import Transport

            self._transport = Transport(settings)
            self._disabled = False
        else:
            self._transport = UnsentTransport()
            self._disabled = True
            if not settings.disabled:
                _warn_not_sending()
        self._start_traces_from_settings()

    def __repr__(self) -> str:
        return f"Client(host={self.host!r}, api_key=<{'set' if self.api_key else 'unset'}>)"

    # -- settings readable (and some settable) as in posthog-python --------------------------

    @property
    def api_key(self) -> str:
        """The project API key ("" when none); setting it changes the key events are sent with."""
        return self._settings.api_key or ""

    @api_key.setter
    def api_key(self, value: str | None) -> None:
        key = (value or "").strip() or None
        self._settings = replace(self._settings, api_key=key)
        update = getattr(self._transport, "use_api_key", None)
        if key is not None and callable(update):
            update(key)

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
        """True: every call is a no-op returning None. Settable, as in posthog-python."""
        return self._disabled

    @disabled.setter
    def disabled(self, value: bool) -> None:
        if not value and isinstance(self._transport, UnsentTransport):
            _warn_not_sending()
            return  # nothing to send with
        self._disabled = bool(value)

    @property
    def debug(self) -> bool:
        """Verbose logging, and errors raised from the capture methods instead of logged."""
        return self._debug

    @debug.setter
    def debug(self, value: bool) -> None:
        self._debug = bool(value)
        if self._debug:
            _enable_debug_logging()

    # -- contexts, as posthog-python's Client offers them ------------------------------------

    def new_context(
        self, fresh: bool = False, capture_exceptions: bool | None = None
    ) -> _context.new_context:
        """A new context whose exceptions this client captures; see :func:`new_context`."""
        return _context.new_context(fresh, capture_exceptions, self)

    def scoped(
        self, fresh: bool = False, capture_exceptions: bool | None = None
    ) -> Callable[[Any], Any]:
        """Decorator: run each call in a new context of this client; see :func:`scoped`."""
        return _context.new_context(fresh, capture_exceptions, self)

    def tag(self, name: str, value: Any) -> None:
        _context.tag(name, value)

    def get_tags(self) -> dict[str, Any]:
        return _context.get_tags()

    def identify_context(self, distinct_id: str) -> None:
        _context.identify_context(distinct_id)

    def set_context_session(self, session_id: str) -> None:
        _context.set_context_session(session_id)

    def set_context_device_id(self, device_id: str) -> None:
        _context.set_context_device_id(device_id)

    # -- events ---------------------------------------------------------------------------

    def capture(
        self,
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
        """Capture ``event``; returns its uuid, or None when disabled or dropped."""
        try:
            return self._capture(
                event,
                distinct_id,
                properties,
                timestamp,
                uuid,
                groups,
                disable_geoip,
                send_feature_flags=send_feature_flags,
                flags=flags,
            )
        except Exception:
            if self._debug:
                raise
            _logger.exception("posthog-otel could not capture %r", event)
            return None

    def capture_ai(
        self,
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
        """Capture an LLM analytics event built by hand (``$ai_generation``...): the arguments
        and the return value of :meth:`capture`, which it is. Sent with the other events to
        ``/batch/``, as posthog-python's AI wrappers send theirs by default."""
        if not (isinstance(event, str) and event.startswith("$ai_")):
            _logger.debug("capture_ai called with a non-AI event name %r", event)
        return self.capture(
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

    # -- delivery -------------------------------------------------------------------------

    def flush(self, timeout_seconds: float | None = 10, *, timeout: float | None = None) -> bool:
        """Send queued events now; True when all were handled within the time budget.

        ``timeout_seconds`` as in posthog-python (``timeout`` is the older spelling).
        """
        budget = timeout if timeout is not None else timeout_seconds
        try:
            return self._with_traces("flush", budget, self._exports_then("flush"))
        except Exception:
            _logger.warning("posthog-otel flush failed", exc_info=True)
            return False

    def join(self) -> None:
        """Send what is queued and stop the sender (posthog-python's ``join``)."""
        self.shutdown()

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush (default budget ``shutdown_timeout``) and stop the sender."""
        if self._excepthooks is not None:
            self._excepthooks.close()
        try:
            self._flags.shutdown()
            budget = self._settings.shutdown_timeout if timeout is None else timeout
            return self._with_traces("shutdown", budget, self._exports_then("shutdown"))
        except Exception:
            _logger.warning("posthog-otel shutdown failed", exc_info=True)
            return False

    def stats(self) -> dict[str, Any]:
        """Delivery counters: captured, queued, sent, batches, retries, dropped by reason; with
        ``traces`` on, the same for spans under ``"traces"``; other signals sent with this
        client (``"logs"``) add their own counters under their name, in the same shape."""
        stats = self._traces_stats(self._transport.stats())
        for name, export in self._exports.items():
            stats[name] = export.stats()
        return stats

    def attach_export(self, name: str, export: SignalExport | None) -> None:
        """Count, flush and shut down ``export`` with this client (None: detach ``name``)."""
        exports = dict(self._exports)
        if export is None:
            exports.pop(name, None)
        else:
            exports[name] = export
        self._exports = exports

    def _exports_then(self, how: str) -> Callable[[float | None], bool]:
        """The attached exports' ``flush``/``shutdown`` first, then the events', one budget."""
        events: Callable[[float | None], bool] = getattr(self._transport, how)
        if not self._exports:
            return events

        def run(budget: float | None) -> bool:
            started = time.monotonic()
            complete = True
            for export in self._exports.values():
                left = None if budget is None else max(0.0, budget - (time.monotonic() - started))
                complete = bool(getattr(export, how)(left)) and complete
            left = None if budget is None else max(0.0, budget - (time.monotonic() - started))
            return bool(events(left)) and complete

        return run

    # -- the one place events are built ---------------------------------------------------

    def _capture(
        self,
        event: str,
        distinct_id: Any,
        properties: Mapping[str, Any] | None,
        timestamp: Any,
        uuid: Any,
        groups: Mapping[str, Any] | None,
        disable_geoip: bool | None,
        *,
        send_feature_flags: Any = False,
        flags: Any = None,
        refine: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> str | None:
        if self._disabled:
            self._refuse()
            return None
        ctx = otel_context.get_current()
        resolved = resolve_scope(ctx)
        props = {**properties, **self._runtime} if properties else dict(self._runtime)
        props = with_context(ctx, resolved, props)
        person, personless = resolve_distinct_id(distinct_id, resolved, ctx)
        if personless and "$process_person_profile" not in props:
            props["$process_person_profile"] = False
        if groups:
            props["$groups"] = groups
        add_trace_ids(ctx, props)
        if flags is not None or send_feature_flags:
            extra = self._feature_flag_properties(
                person, groups, disable_geoip, send_feature_flags, flags
            )
            if extra:
                props = {**extra, **props}
        message = {"properties": props, "distinct_id": person, "event": event}
        return self._enqueue(message, timestamp, uuid, disable_geoip, refine)

    def capture_raw(
        self,
        event: str,
        *,
        distinct_id: Any = None,
        properties: Mapping[str, Any] | None = None,
        timestamp: Any = None,
        uuid: Any = None,
    ) -> str | None:
        """Capture an event built elsewhere, without reading the current context.

        For exporters and bridges that map spans or log records to events: ``properties``
        already hold the tags, session and trace ids of their source. Runtime and library
        properties and ``super_properties`` are added; no distinct id makes it personless.
        """
        try:
            if self._disabled:
                return None
            props = {**properties, **self._runtime} if properties else dict(self._runtime)
            person = stringify_id(distinct_id)
            if not person:
                person, _ = resolve_distinct_id(None, None, otel_context.Context())
                props.setdefault("$process_person_profile", False)
            message = {"properties": props, "distinct_id": person, "event": event}
            return self._enqueue(message, timestamp, uuid, None)
        except Exception:
            _logger.warning("posthog-otel could not capture %r", event, exc_info=True)
            return None

    def _enqueue(
        self,
        message: dict[str, Any],
        timestamp: Any,
        uuid: Any,
        disable_geoip: bool | None,
        refine: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> str | None:
        """Finish ``message`` as posthog-python does and queue it; its uuid, or None."""
        if self._disabled:
            self._refuse()
            return None
        event = message.get("event")
        if not isinstance(event, str) or not event:
            raise ValueError(f"event name must be a non-empty string, got {event!r}")
        message["timestamp"] = event_timestamp(timestamp)
        message["uuid"] = event_uuid(uuid)
        props = message.get("properties")
        if not props:
            props = message["properties"] = {}
        props.update(LIBRARY)
        if self._settings.disable_geoip if disable_geoip is None else disable_geoip:
            props["$geoip_disable"] = True
        if self.super_properties:
            props.update(self.super_properties)
        if self._release_id is not None and "$release_id" not in props:
            props["$release_id"] = self._release_id
        if self._settings.is_server:
            props["$is_server"] = True
        if self._excluded is not None:
            remove_excluded(props, self._excluded, self._runtime)
        if refine is not None:  # a feature-flag event's pinned or allowed properties
            message["properties"] = refine(props)
        if self.before_send is not None:
            kept = self._run_before_send(message)
            if kept is None:
                return None
            message = kept
        sent_uuid: str = message["uuid"]
        if not self.send:
            return sent_uuid
        return sent_uuid if self._transport.enqueue(message) else None

    def _refuse(self) -> None:
        """A call on a disabled client: nothing is sent; counted when there is no API key."""
        if isinstance(self._transport, UnsentTransport):
            self._transport.enqueue({})
        return None

    def _run_before_send(self, message: dict[str, Any]) -> dict[str, Any] | None:
        before_send = self.before_send
        if before_send is None:
            return message
        if not isinstance(message["timestamp"], str):
            message["timestamp"] = timestamp_iso(message["timestamp"])
        kept = run_before_send(before_send, clean(message))
        if kept is not None:
            kept["uuid"] = event_uuid(kept.get("uuid"))
        return kept


Client.__init__.__signature__ = CLIENT_SIGNATURE  # type: ignore[attr-defined]


class Posthog(Client):
    """posthog-python's name for :class:`Client`."""


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
    logger = logging.getLogger("posthog")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
