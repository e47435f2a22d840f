"""Uncaught exceptions to PostHog: a client's ``sys.excepthook`` and ``threading.excepthook``.

A client built with ``enable_exception_autocapture=True`` (the default) installs both hooks,
as posthog-python does. Each hook first runs the hook that was installed before it (Python's
own prints the traceback), then captures the exception once, unless something on the way
already captured it: an instrumented thread's own hook captures it inside the thread's
PostHog context, whichever hook was installed first. ``close()`` (the client's shutdown) puts
the previous hooks back when ours are still the installed ones, and otherwise leaves ours in
the chain, passing everything on without capturing.

Usage::

    hooks = ExceptHooks(client.capture_uncaught_exception)
    ...
    hooks.close()
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["ExceptHooks"]

_logger = logging.getLogger("posthog_otel")

# capture(exc_info, in_thread): what a hook calls for an exception nobody caught
Capture = Callable[..., object]


class ExceptHooks:
    """The pair of hooks of one client; installed on creation, inert after ``close()``."""

    def __init__(self, capture: Capture) -> None:
        self._capture = capture
        self._closed = False
        self._previous_sys = sys.excepthook
        self._previous_thread = threading.excepthook
        # Bound once, so the identity checks in close() see the objects that were installed.
        self._sys_hook = self._on_uncaught
        self._thread_hook = self._on_thread_uncaught
        sys.excepthook = self._sys_hook
        threading.excepthook = self._thread_hook

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop capturing and give the hooks back to whoever had them before."""
        if self._closed:
            return
        self._closed = True
        if sys.excepthook is self._sys_hook:
            sys.excepthook = self._previous_sys
        if threading.excepthook is self._thread_hook:
            threading.excepthook = self._previous_thread

    def _on_uncaught(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        try:
            self._previous_sys(exc_type, exc, tb)
        finally:
            self._report((exc_type, exc, tb), in_thread=False)

    def _on_thread_uncaught(self, args: Any) -> None:
        try:
            self._previous_thread(args)
        finally:
            exc_info = (
                getattr(args, "exc_type", None),
                getattr(args, "exc_value", None),
                getattr(args, "exc_traceback", None),
            )
            self._report(exc_info, in_thread=True)

    def _report(self, exc_info: tuple[Any, Any, Any], *, in_thread: bool) -> None:
        # SystemExit and KeyboardInterrupt end programs on purpose: not errors to report.
        if self._closed or not isinstance(exc_info[1], Exception):
            return
        try:
            self._capture(exc_info, in_thread=in_thread)
        except Exception:
            _logger.debug("posthog-otel could not capture an uncaught exception", exc_info=True)
