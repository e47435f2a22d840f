"""The exception methods of :class:`~posthog_otel.Client`: ``capture_exception`` and friends.

A mixin, so :mod:`posthog_otel.client` stays about building and queueing events. The
``$exception_list`` comes from :mod:`posthog_otel.errors`; each exception object is captured
once, whoever sees it first (a context, a span hook, middleware, an excepthook or the app).

Usage::

    try:
        charge()
    except CardDeclined:
        client.capture_exception()             # or capture_exception(exc), or sys.exc_info()
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from . import errors
from ._client_core import ClientCore

__all__ = ["ExceptionMethods"]

_logger = logging.getLogger("posthog.otel")


class ExceptionMethods(ClientCore):
    """``capture_exception``, ``capture_uncaught_exception``, ``capture_exception_list``."""

    def capture_exception(
        self,
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
            send_feature_flags=send_feature_flags,
            flags=flags,
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
        timestamp: Any = None,
        uuid: Any = None,
        groups: Mapping[str, Any] | None = None,
        disable_geoip: bool | None = None,
        send_feature_flags: Any = False,
        flags: Any = None,
        handled: bool = True,
        mechanism_type: str = "generic",
        level: str = "error",
        source: str | None = None,
    ) -> str | None:
        try:
            found = errors.exc_info_of(exception)
            if found is None:
                return None
            if self._disabled:
                self._refuse()
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
            if self._settings.log_captured_exceptions:
                _logger.error("captured exception", exc_info=found[0])
            return self._capture(
                "$exception",
                distinct_id,
                props,
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
            _logger.exception("posthog-otel could not capture an exception")
            return None

    def capture_exception_list(
        self,
        exception_list: list[dict[str, Any]],
        *,
        distinct_id: Any = None,
        properties: Mapping[str, Any] | None = None,
        timestamp: Any = None,
    ) -> str | None:
        """Capture an already built ``$exception_list`` (from a span or another process)."""
        props: dict[str, Any] = {"$exception_list": exception_list, "$exception_level": "error"}
        if properties:
            props.update(properties)
        try:
            return self._capture("$exception", distinct_id, props, timestamp, None, None, None)
        except Exception:
            if self._debug:
                raise
            _logger.exception("posthog-otel could not capture an exception list")
            return None
