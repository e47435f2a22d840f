"""Fast access to the OpenTelemetry current Context, and the OpenTelemetry internals we use.

Entering a PostHog context runs on every request and often many times within one, so it
skips the layers of ``opentelemetry.context.get_current()/attach()`` when the SDK uses its
default ``ContextVarsRuntimeContext`` (checked once at import; any other runtime context goes
through the public API). Detaching tolerates a token from another ``contextvars.Context``.

    ctx = get_current()
    token = attach(new_ctx)
    detach(token, new_ctx)
    SPAN_KEY in ctx                 # is a span current? (cheaper than get_current_span)
    suppressed_context()            # for our own uploads: no spans, no propagation

The Context keys used here are private in opentelemetry-api; this module is the one place in
the package that names them.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace.propagation import _SPAN_KEY as SPAN_KEY

__all__ = ["SPAN_KEY", "attach", "detach", "get_current", "suppressed_context"]

_SUPPRESS_KEYS = (
    otel_context._SUPPRESS_INSTRUMENTATION_KEY,
    otel_context._SUPPRESS_HTTP_INSTRUMENTATION_KEY,
)


def suppressed_context() -> otel_context.Context:
    """An empty Context with instrumentation suppressed: no spans, no baggage, no trace headers."""
    ctx = otel_context.Context()
    for key in _SUPPRESS_KEYS:
        ctx = otel_context.set_value(key, True, ctx)
    return ctx


def _find_context_var() -> contextvars.ContextVar[otel_context.Context] | None:
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if not isinstance(var, contextvars.ContextVar):
        return None
    probe = otel_context.Context()

    def check() -> bool:
        token = otel_context.attach(probe)
        try:
            return var.get() is probe and otel_context.get_current() is probe
        finally:
            otel_context.detach(token)

    return var if contextvars.copy_context().run(check) else None


_VAR = _find_context_var()

get_current: Callable[[], otel_context.Context]
attach: Callable[[otel_context.Context], Any]

if _VAR is not None:
    get_current = _VAR.get
    attach = _VAR.set
else:  # pragma: no cover - only with a custom OTEL_PYTHON_CONTEXT runtime
    get_current = otel_context.get_current
    attach = otel_context.attach


def detach(token: Any, attached: otel_context.Context | None) -> bool:
    """Undo :func:`attach`, also from another contextvars Context, without noise.

    OpenTelemetry's ``detach`` logs an error when the token was created in another
    ``contextvars.Context`` (an async generator finalised elsewhere, a streaming response).
    Here the reset is attempted directly; if it cannot apply and our context is still current
    in this Context, the previous value is restored so the stale context does not stay.
    Returns True when the reset applied cleanly (no other Context can still hold ``attached``
    as current because of this attach).
    """
    if not isinstance(token, contextvars.Token):
        otel_context.detach(token)
        return True
    var = token.var
    try:
        var.reset(token)
        return True
    except ValueError:  # created in a different contextvars.Context
        if var.get() is attached:
            old = token.old_value
            var.set(otel_context.Context() if old is contextvars.Token.MISSING else old)
        return False
    except RuntimeError:  # token already used
        return False
