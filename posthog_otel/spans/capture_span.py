"""``capture_span``: start a span that becomes a PostHog event, whatever ``capture_spans`` says.

    with capture_span("report_generated", format="pdf"):
        build_report()

    @capture_span("checkout")
    async def checkout(cart): ...

    @capture_span()          # event named after the function
    def sync_inventory(): ...

The span is marked with the ``posthog.event`` attribute (the event name); its other attributes
become event properties, and its duration ``duration_ms``. Exceptions leaving it are recorded
on the span (and captured once, see :mod:`posthog_otel.spans.record_exception`).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from opentelemetry import trace

from ..version import __version__
from .mapping import EVENT_ATTRIBUTE

__all__ = ["capture_span"]

_F = TypeVar("_F", bound=Callable[..., Any])


class capture_span:
    """Context manager and decorator (sync and async); see the module docstring."""

    def __init__(self, name: str | None = None, **attributes: Any) -> None:
        self._name = name
        self._attributes = attributes
        self._manager: Any = None

    def _start(self, name: str) -> Any:
        attributes = {**self._attributes, EVENT_ATTRIBUTE: name}
        tracer = trace.get_tracer("posthog_otel", __version__)
        return tracer.start_as_current_span(name, attributes=attributes)

    def __enter__(self) -> trace.Span:
        name = self._name or sys._getframe(1).f_code.co_name
        self._manager = self._start(name)
        span: trace.Span = self._manager.__enter__()
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        manager, self._manager = self._manager, None
        result: bool | None = manager.__exit__(exc_type, exc, tb)
        return result

    def __call__(self, fn: _F) -> _F:
        name = self._name or fn.__qualname__
        start = self._start

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with start(name):
                    return await fn(*args, **kwargs)

            return cast(_F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with start(name):
                return fn(*args, **kwargs)

        return cast(_F, run)
