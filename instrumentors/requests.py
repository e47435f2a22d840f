"""PostHog context on outgoing ``requests`` calls, toward propagation targets only.

Usage::

    from .requests import PosthogRequestsInstrumentor

    PosthogRequestsInstrumentor().instrument()                      # targets from the env
    PosthogRequestsInstrumentor().instrument(propagation_targets=["internal", "*.mycorp.com"])

or zero-code: ``opentelemetry-instrument`` loads it (entry point ``posthog_requests``).

Every request sent through ``requests`` (any ``Session``, any ``HTTPAdapter`` subclass that
calls ``super().send``) gets, when its host is a propagation target, the current scope's
``posthog.*`` baggage members (merged into any ``baggage`` header already there) and
``X-POSTHOG-*`` headers; when its host is not a target, every ``posthog.*`` member and
``X-POSTHOG-*`` header is removed, whoever wrote it (contrib's ``RequestsInstrumentor`` with
the stock baggage propagator, a header copied by a redirect), while other baggage members go
through untouched.

It wraps ``requests.adapters.HTTPAdapter.send``: each redirect hop passes there with its own
URL, and it runs after contrib's ``RequestsInstrumentor`` (which wraps ``Session.send``) has
injected, whichever was instrumented first, so there are never duplicate headers. The
destination is also put in the OpenTelemetry Context for the duration of the send, so an
inject further down (contrib's urllib3 instrumentation) applies the same policy.
``uninstrument()`` restores ``HTTPAdapter.send``. Requests run with
``suppress_instrumentation()`` (posthog-otel's own uploads) are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from posthog_otel.context import runtime as _runtime
from posthog_otel.propagation.destination import with_destination

from ._base import ImportHooks, PosthogLibraryInstrumentor, imported
from ._outbound import Outbound, find_wrapper, unwrap_ours

__all__ = ["PosthogRequestsInstrumentor"]

_logger = logging.getLogger("posthog.otel")
_outbound = Outbound()
_hooks = ImportHooks("requests")


def _send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    token = attached = None
    if _outbound.active:
        try:
            request = args[0] if args else kwargs.get("request")
            headers = getattr(request, "headers", None)
            url = getattr(request, "url", None)
            if headers is not None and isinstance(url, str) and is_instrumentation_enabled():
                attached = with_destination(url)
                _outbound.propagator().inject(headers, attached)
                token = _runtime.attach(attached)
        except Exception:
            _logger.debug("posthog-otel requests hook failed", exc_info=True)
    try:
        return wrapped(*args, **kwargs)
    finally:
        if token is not None:
            _runtime.detach(token, attached)


class PosthogRequestsInstrumentor(PosthogLibraryInstrumentor):
    """Adds PostHog context to outgoing ``requests`` calls toward propagation targets.

    Options of ``instrument()``: ``propagation_targets`` (patterns; default: the
    ``PosthogPropagator`` in the global textmap, else ``POSTHOG_OTEL_PROPAGATION_TARGETS``,
    else internal hosts only) or ``propagator`` (a ``PosthogPropagator``).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("requests ~= 2.0",)

    def _instrument(self, **kwargs: Any) -> None:
        _outbound.configure(kwargs)  # ValueError for invalid options given in code
        _outbound.active = True
        _hooks.start(self.library_supported)
        _hooks.when_imported("requests.adapters", _wrap_send)

    def _uninstrument(self, **kwargs: Any) -> None:
        _outbound.active = False
        _hooks.stop()
        try:
            adapters = imported("requests.adapters")
            if adapters is not None:
                unwrap_ours(adapters.HTTPAdapter, "send", _send)
        except Exception:
            _logger.debug("posthog-otel could not uninstrument requests", exc_info=True)


def _wrap_send(adapters: Any) -> None:
    adapter = adapters.HTTPAdapter
    if not find_wrapper(adapter.__dict__.get("send"), _send):
        wrapt.wrap_function_wrapper(adapter, "send", _send)
