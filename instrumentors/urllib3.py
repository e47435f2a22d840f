"""PostHog context on outgoing ``urllib3`` calls, toward propagation targets only.

Usage::

    from .urllib3 import PosthogUrllib3Instrumentor

    PosthogUrllib3Instrumentor().instrument()                      # targets from the env
    PosthogUrllib3Instrumentor().instrument(propagation_targets=["internal", "*.mycorp.com"])

or zero-code: ``opentelemetry-instrument`` loads it (entry point ``posthog_urllib3``).

Every request a ``urllib3`` connection pool sends (``PoolManager``, ``ProxyManager``, a pool
of its own, and so ``requests`` too) gets, when its host is a propagation target, the current
scope's ``posthog.*`` baggage members and ``X-POSTHOG-*`` headers; any other host gets none of
them, whoever wrote them (contrib's ``URLLib3Instrumentor`` with the stock baggage propagator,
a header copied by a retry or redirect); other baggage members go through untouched.

It wraps ``urllib3.connectionpool.HTTPConnectionPool._make_request``, called once per attempt
with the final headers, below contrib's wrapper of ``urlopen`` whichever was instrumented
first. The headers are copied before they are changed (a pool's default headers are shared by
every request). The destination is the request's absolute URL when it has one (through an
HTTP proxy), else the pool's host. ``uninstrument()`` restores the method; requests run with
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

__all__ = ["PosthogUrllib3Instrumentor"]

_logger = logging.getLogger("posthog_otel")
_outbound = Outbound()
_HEADERS_INDEX = 4  # _make_request(conn, method, url, body, headers, ...)


def _destination(instance: Any, url: Any) -> str:
    if isinstance(url, str) and "://" in url:
        return url
    return str(getattr(instance, "host", "") or "")


def _make_request(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    if _outbound.active:
        try:
            if is_instrumentation_enabled():
                positional = len(args) > _HEADERS_INDEX
                headers = args[_HEADERS_INDEX] if positional else kwargs.get("headers")
                copied: dict[str, Any] = dict(headers) if headers else {}
                url = args[2] if len(args) > 2 else kwargs.get("url")
                _outbound.apply(copied, _destination(instance, url))
                if positional:
                    args = (*args[:_HEADERS_INDEX], copied, *args[_HEADERS_INDEX + 1 :])
                else:
                    kwargs["headers"] = copied
        except Exception:
            _logger.debug("posthog-otel urllib3 hook failed", exc_info=True)
    return wrapped(*args, **kwargs)


class PosthogUrllib3Instrumentor(PosthogLibraryInstrumentor):
    """Adds PostHog context to outgoing ``urllib3`` calls toward propagation targets.

    Options of ``instrument()``: ``propagation_targets`` (patterns; default: the
    ``PosthogPropagator`` in the global textmap, else ``POSTHOG_OTEL_PROPAGATION_TARGETS``,
    else internal hosts only) or ``propagator`` (a ``PosthogPropagator``).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("urllib3 >= 1.26, < 3",)

    def _instrument(self, **kwargs: Any) -> None:
        _outbound.configure(kwargs)  # ValueError for invalid options given in code
        _outbound.active = True
        _hooks.start(self.library_supported)
        _hooks.when_imported("urllib3.connectionpool", _wrap)

    def _uninstrument(self, **kwargs: Any) -> None:
        _outbound.active = False
        _hooks.stop()
        try:
            module = imported("urllib3.connectionpool")
            if module is not None:
                unwrap_ours(module.HTTPConnectionPool, "_make_request", _make_request)
        except Exception:
            _logger.debug("posthog-otel could not uninstrument urllib3", exc_info=True)


_hooks = ImportHooks("urllib3")


def _wrap(module: Any) -> None:
    owner = module.HTTPConnectionPool
    if not find_wrapper(owner.__dict__.get("_make_request"), _make_request):
        wrapt.wrap_function_wrapper(owner, "_make_request", _make_request)
