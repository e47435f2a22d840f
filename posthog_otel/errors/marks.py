"""Once-per-exception bookkeeping: which exception objects were already reported.

Nested contexts, middleware, span hooks and instrumentors can all see the same exception; the
first one to call ``mark_captured`` reports it and the others skip it.  The mark is an
attribute on the exception when it accepts one, otherwise an entry in a small bounded table
keyed by identity that does not keep the exception alive.

Usage::

    from posthog_otel.errors.marks import is_captured, mark_captured

    try:
        charge(order)
    except PaymentError as exc:
        if mark_captured(exc):
            report(exc)  # only the first caller gets here

    assert is_captured(exc)

Neither function raises; on unexpected trouble they log at debug level on the
``posthog_otel`` logger.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

__all__ = ["is_captured", "mark_captured"]

_log = logging.getLogger("posthog.otel")

_CAPTURED_ATTR = "__posthog_otel_captured__"
_FALLBACK_LIMIT = 1024
_captured_lock = threading.Lock()
# For exceptions that refuse our attribute: id -> weak reference, or the object itself when it
# cannot be weakly referenced (a bounded number of those are kept alive).
_captured_fallback: dict[int, Any] = {}


def mark_captured(exc: BaseException) -> bool:
    """Mark ``exc`` as reported; True the first time for this object, False afterwards."""
    try:
        with _captured_lock:
            if _is_marked(exc):
                return False
            _set_mark(exc)
            return True
    except Exception:
        _log.debug("posthog_otel: could not mark an exception as captured", exc_info=True)
        return True


def is_captured(exc: BaseException) -> bool:
    """Whether ``mark_captured`` was already called for this exception object."""
    try:
        with _captured_lock:
            return _is_marked(exc)
    except Exception:
        _log.debug("posthog_otel: could not check an exception's mark", exc_info=True)
        return False


def _is_marked(exc: BaseException) -> bool:
    try:
        if getattr(exc, _CAPTURED_ATTR, None) is True:
            return True
    except Exception:
        pass
    held = _captured_fallback.get(id(exc))
    if isinstance(held, weakref.ref):
        held = held()
    return held is exc


def _set_mark(exc: BaseException) -> None:
    try:
        setattr(exc, _CAPTURED_ATTR, True)
        if getattr(exc, _CAPTURED_ATTR, None) is True:
            return
    except Exception:
        pass
    key = id(exc)
    held: Any
    try:
        held = weakref.ref(exc, lambda _ref: _captured_fallback.pop(key, None))
    except TypeError:
        held = exc
    while len(_captured_fallback) >= _FALLBACK_LIMIT:
        _captured_fallback.pop(next(iter(_captured_fallback)), None)
    _captured_fallback[key] = held
