"""``propagate_context(fn)``: run a callable later, elsewhere, in the caller's current context.

For work started by means no instrumentation sees (a custom thread pool, a callback registry,
``loop.call_soon_threadsafe``, a scheduler)::

    import posthog_otel

    with posthog_otel.new_context():
        posthog_otel.identify_context("user-123")
        scheduler.add_job(posthog_otel.propagate_context(send_receipt), order_id)

    # send_receipt runs with user-123's context (and the caller's span as parent)

The whole OpenTelemetry Context current at wrap time is attached around each call (the PostHog
context, the current span, baggage), as contrib's ``ThreadingInstrumentor`` does for threads.
Coroutine functions get an async wrapper; the context is current while the coroutine runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from opentelemetry.context import Context

from . import runtime as _runtime

__all__ = ["call_in_context", "propagate_context"]

_F = TypeVar("_F", bound=Callable[..., Any])


def call_in_context(ctx: Context, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with ``ctx`` attached as the current OpenTelemetry Context."""
    token = _runtime.attach(ctx)
    try:
        return fn(*args, **kwargs)
    finally:
        _runtime.detach(token, ctx)


def propagate_context(fn: _F) -> _F:
    """Wrap ``fn`` so each call runs in the OpenTelemetry Context current now (see module)."""
    ctx = _runtime.get_current()
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            token = _runtime.attach(ctx)
            try:
                return await fn(*args, **kwargs)
            finally:
                _runtime.detach(token, ctx)

        return cast(_F, run_async)

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        return call_in_context(ctx, fn, *args, **kwargs)

    return cast(_F, run)
