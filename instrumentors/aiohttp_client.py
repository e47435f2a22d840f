"""PostHog context on outgoing ``aiohttp`` client calls, toward propagation targets only.

Usage::

    from .aiohttp_client import PosthogAiohttpClientInstrumentor

    PosthogAiohttpClientInstrumentor().instrument()                      # targets from the env
    PosthogAiohttpClientInstrumentor().instrument(propagation_targets=["internal", "*.mycorp.com"])

or zero-code: ``opentelemetry-instrument`` loads it (entry point ``posthog_aiohttp_client``).

Every request an ``aiohttp.ClientSession`` sends gets, when its host is a propagation target,
the current scope's ``posthog.*`` baggage members and ``X-POSTHOG-*`` headers; any other host
gets none of them, whoever wrote them (contrib's ``AioHttpClientInstrumentor`` with the stock
baggage propagator, a header copied by a redirect); other baggage members go through
untouched.

It wraps ``aiohttp.ClientRequest.send``, called once per hop with the final headers, after
contrib's trace hooks have injected. The change is made before the coroutine starts, in the
caller's task and context. ``uninstrument()`` restores the method; requests run with
``suppress_instrumentation()`` are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from ._base import ImportHooks, PosthogLibraryInstrumentor, imported
from ._outbound import Outbound, find_wrapper, unwrap_ours

__all__ = ["PosthogAiohttpClientInstrumentor"]

_logger = logging.getLogger("posthog_otel")
_outbound = Outbound()


def _send(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _outbound.active:
        try:
            headers = getattr(instance, "headers", None)
            host = getattr(getattr(instance, "url", None), "host", None)
            if headers is not None and is_instrumentation_enabled():
                _outbound.apply(headers, host=host if isinstance(host, str) else "")
        except Exception:
            _logger.debug("posthog-otel aiohttp hook failed", exc_info=True)
    return wrapped(*args, **kwargs)


class PosthogAiohttpClientInstrumentor(PosthogLibraryInstrumentor):
    """Adds PostHog context to outgoing ``aiohttp`` client calls toward propagation targets.

    Options of ``instrument()``: ``propagation_targets`` (patterns; default: the
    ``PosthogPropagator`` in the global textmap, else ``POSTHOG_OTEL_PROPAGATION_TARGETS``,
    else internal hosts only) or ``propagator`` (a ``PosthogPropagator``).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("aiohttp ~= 3.0",)

    def _instrument(self, **kwargs: Any) -> None:
        _outbound.configure(kwargs)  # ValueError for invalid options given in code
        _outbound.active = True
        _hooks.start(self.library_supported)
        _hooks.when_imported("aiohttp", _wrap)

    def _uninstrument(self, **kwargs: Any) -> None:
        _outbound.active = False
        _hooks.stop()
        try:
            module = imported("aiohttp")
            if module is not None:
                unwrap_ours(module.ClientRequest, "send", _send)
        except Exception:
            _logger.debug("posthog-otel could not uninstrument aiohttp", exc_info=True)


_hooks = ImportHooks("aiohttp")


def _wrap(module: Any) -> None:
    owner = module.ClientRequest
    if not find_wrapper(owner.__dict__.get("send"), _send):
        wrapt.wrap_function_wrapper(owner, "send", _send)
