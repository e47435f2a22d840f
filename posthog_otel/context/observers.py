"""Who wants to hear about contexts: the observer API higher layers subscribe to.

The context layer is the lowest in the package, so it never imports the span processor or
the client. They subscribe here instead:

    from posthog_otel.context import observers

    unsubscribe = observers.on_change(stamp_current_span)      # (scope, field, key, value)
    observers.on_exit_exception(capture_exception)             # (scope, exception)
    unsubscribe()

``on_change`` observers run after ``identify_context`` / ``set_context_session`` /
``set_context_window_id`` / ``set_context_device_id`` / ``tag`` while a span is current (the
only time late stamping has anything to do), with ``field`` the identity field's name or
``"tag"`` (``key`` then names the tag), or ``None`` when anything may have changed
(:func:`~posthog_otel.context.api.notify_changed`). ``on_exit_exception`` observers run
when an ``Exception`` leaves a context. Observers must be cheap; a failing one is logged at
debug level and never reaches the app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

__all__ = [
    "ChangeObserver",
    "ExitExceptionObserver",
    "has_change_observers",
    "notify_change",
    "notify_exit_exception",
    "on_change",
    "on_exit_exception",
]

_logger = logging.getLogger("posthog.otel")

# The first argument is the Scope (typed loosely: the scope module imports this one).
ChangeObserver = Callable[[Any, "str | None", "str | None", Any], None]
ExitExceptionObserver = Callable[[Any, Exception], None]

# Tuples, replaced on (un)subscribe: readers iterate without a lock.
_change: tuple[ChangeObserver, ...] = ()
_exit_exception: tuple[ExitExceptionObserver, ...] = ()


def on_change(observer: ChangeObserver) -> Callable[[], None]:
    """Call ``observer(scope, field, key, value)`` after a context changes; returns unsubscribe."""
    global _change
    _change = (*_change, observer)

    def unsubscribe() -> None:
        global _change
        _change = tuple(o for o in _change if o is not observer)

    return unsubscribe


def on_exit_exception(observer: ExitExceptionObserver) -> Callable[[], None]:
    """Call ``observer(scope, exception)`` when an Exception leaves a context; returns unsubscribe."""
    global _exit_exception
    _exit_exception = (*_exit_exception, observer)

    def unsubscribe() -> None:
        global _exit_exception
        _exit_exception = tuple(o for o in _exit_exception if o is not observer)

    return unsubscribe


def has_change_observers() -> bool:
    """True when someone listens to changes (lets setters skip work otherwise)."""
    return bool(_change)


def notify_change(scope: Any, field: str | None, key: str | None, value: Any) -> None:
    for observer in _change:
        try:
            observer(scope, field, key, value)
        except Exception:
            _logger.debug("posthog-otel context observer failed", exc_info=True)


def notify_exit_exception(scope: Any, exc: BaseException) -> None:
    """Tell observers an exception left ``scope`` (only ``Exception``; never raises)."""
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit, GeneratorExit, ...
        return
    for observer in _exit_exception:
        try:
            observer(scope, exc)
        except Exception:
            _logger.debug(
                "posthog-otel could not capture an exception leaving a context", exc_info=True
            )
