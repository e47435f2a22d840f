"""The Django middleware's exception capture: which exceptions count, and Django's 500 signal.

Private to :mod:`posthog_otel.instrumentors.django`. The middleware leaves a :class:`Tracked`
on the request (attribute :data:`REQUEST_ATTR`); ``process_exception`` and Django's
``got_request_exception`` signal capture through it, once, skipping client errors.

Usage::

    from ._django_exceptions import REQUEST_ATTR, Tracked, capture_in, connect_signal, is_client_error

    connect_signal()                                        # once per process
    setattr(request, REQUEST_ATTR, Tracked(context, options))
    if not is_client_error(exc):
        capture_in(getattr(request, REQUEST_ATTR), exc)
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

from ._django_request import django_module
from ._request import RequestContext, RequestOptions, capture_request_exception

__all__ = ["REQUEST_ATTR", "Tracked", "capture_in", "connect_signal", "is_client_error"]

_logger = logging.getLogger("posthog.otel")

REQUEST_ATTR = "_posthog_otel_request"


class Tracked:
    """What the middleware leaves on the request for its exception hooks."""

    __slots__ = ("context", "options")

    def __init__(self, context: RequestContext, options: RequestOptions) -> None:
        self.context = context
        self.options = options


def capture_in(tracked: Tracked, exc: BaseException) -> None:
    """Capture ``exc`` once, in the tracked request's context and with its options."""
    capture_request_exception(exc, tracked.options, tracked.context)


def is_client_error(exc: BaseException) -> bool:
    """Whether Django answers ``exc`` with a 4xx (not captured): 404, 403, 400."""
    global _CLIENT_ERRORS
    if _CLIENT_ERRORS is None:
        errors = django_module("django.core.exceptions")
        _CLIENT_ERRORS = (
            django_module("django.http").Http404,
            errors.PermissionDenied,
            errors.BadRequest,
            errors.SuspiciousOperation,
            django_module("django.http.multipartparser").MultiPartParserError,
        )
    return isinstance(exc, _CLIENT_ERRORS)


_CLIENT_ERRORS: tuple[type[BaseException], ...] | None = None


def _on_got_request_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """Django signal: a 500 is being built (an exception escaped a view or middleware)."""
    try:
        tracked = getattr(request, REQUEST_ATTR, None)
        exc = sys.exc_info()[1]  # empty when Django builds the 500 in another thread (ASGI)
        if isinstance(tracked, Tracked) and exc is not None:
            capture_in(tracked, exc)
    except Exception:
        _logger.debug("posthog-otel got_request_exception hook failed", exc_info=True)


_signal_lock = threading.Lock()
_signal_connected = False


def connect_signal() -> None:
    """Connect the ``got_request_exception`` receiver, once per process."""
    global _signal_connected
    if _signal_connected:
        return
    with _signal_lock:
        if not _signal_connected:
            django_module("django.core.signals").got_request_exception.connect(
                _on_got_request_exception, weak=False, dispatch_uid="posthog_otel"
            )
            _signal_connected = True
