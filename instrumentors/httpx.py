"""PostHog context on outgoing ``httpx`` calls (sync and async), toward propagation targets only.

Usage::

    from .httpx import PosthogHttpxInstrumentor

    PosthogHttpxInstrumentor().instrument()                      # targets from the env
    PosthogHttpxInstrumentor().instrument(propagation_targets=["internal", "*.mycorp.com"])

or zero-code: ``opentelemetry-instrument`` loads it (entry point ``posthog_httpx``).

Every request that ``httpx.Client`` / ``httpx.AsyncClient`` sends over the network gets, when
its host is a propagation target, the current scope's ``posthog.*`` baggage members (merged
into any ``baggage`` header already there) and ``X-POSTHOG-*`` headers; when its host is not a
target, every ``posthog.*`` member and ``X-POSTHOG-*`` header is removed, whoever wrote it
(contrib's ``HTTPXClientInstrumentor`` with the stock baggage propagator, a header copied by a
redirect), while other baggage members go through untouched.

httpx's network transports hand each request to httpcore's connection pool, so that is where
this wraps (``httpcore.ConnectionPool.handle_request`` and
``httpcore.AsyncConnectionPool.handle_async_request``, proxies included): below contrib's
``HTTPXClientInstrumentor`` (which wraps the httpx transports), whichever was instrumented
first, once per redirect hop with that hop's host. Transports that never reach the network
(``MockTransport``, ``WSGITransport``, ``ASGITransport``) are not touched.
``uninstrument()`` restores both methods. Requests run with ``suppress_instrumentation()``
are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, MutableMapping
from typing import Any

import wrapt
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from posthog_otel.propagation.destination import with_destination

from ._base import ImportHooks, PosthogLibraryInstrumentor, imported
from ._outbound import Outbound, find_wrapper, unwrap_ours

__all__ = ["PosthogHttpxInstrumentor"]

_logger = logging.getLogger("posthog.otel")
_outbound = Outbound()
_hooks = ImportHooks("httpx")


class _RawHeaders(MutableMapping[str, str]):
    """httpcore's ``[(name, value), …]`` header list as a case-insensitive str mapping."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw

    def _indices(self, key: str) -> list[int]:
        name = key.lower().encode("latin-1")
        return [i for i, (k, _) in enumerate(self.raw) if k.lower() == name]

    def __getitem__(self, key: str) -> str:
        values = [self.raw[i][1].decode("latin-1") for i in self._indices(key)]
        if not values:
            raise KeyError(key)
        return ",".join(values)

    def __setitem__(self, key: str, value: str) -> None:
        indices = self._indices(key)
        entry = (key.encode("latin-1"), value.encode("latin-1"))
        if indices:
            self.raw[indices[0]] = entry
            for i in reversed(indices[1:]):
                del self.raw[i]
        else:
            self.raw.append(entry)

    def __delitem__(self, key: str) -> None:
        indices = self._indices(key)
        if not indices:
            raise KeyError(key)
        for i in reversed(indices):
            del self.raw[i]

    def __iter__(self) -> Iterator[str]:
        return (k.decode("latin-1") for k, _ in self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def _apply(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if not _outbound.active:
        return
    try:
        request = args[0] if args else kwargs.get("request")
        headers = getattr(request, "headers", None)
        host = getattr(getattr(request, "url", None), "host", None)
        if not isinstance(headers, list) or not isinstance(host, bytes):
            return
        if is_instrumentation_enabled():
            context = with_destination(None, host=host.decode("ascii", "replace"))
            _outbound.propagator().inject(_RawHeaders(headers), context)
    except Exception:
        _logger.debug("posthog-otel httpx hook failed", exc_info=True)


def _handle_request(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    _apply(args, kwargs)
    return wrapped(*args, **kwargs)


def _handle_async_request(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    _apply(args, kwargs)  # before the coroutine is created: same task, same context
    return wrapped(*args, **kwargs)


def _targets(httpcore: Any) -> list[tuple[Any, str, Any]]:
    return [
        (httpcore.ConnectionPool, "handle_request", _handle_request),
        (httpcore.AsyncConnectionPool, "handle_async_request", _handle_async_request),
    ]


def _wrap_pools(httpcore: Any) -> None:
    for owner, name, wrapper in _targets(httpcore):
        if not find_wrapper(owner.__dict__.get(name), wrapper):
            wrapt.wrap_function_wrapper(owner, name, wrapper)


class PosthogHttpxInstrumentor(PosthogLibraryInstrumentor):
    """Adds PostHog context to outgoing ``httpx`` calls toward propagation targets.

    Options of ``instrument()``: ``propagation_targets`` (patterns; default: the
    ``PosthogPropagator`` in the global textmap, else ``POSTHOG_OTEL_PROPAGATION_TARGETS``,
    else internal hosts only) or ``propagator`` (a ``PosthogPropagator``).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("httpx >= 0.18.0",)

    def _instrument(self, **kwargs: Any) -> None:
        _outbound.configure(kwargs)  # ValueError for invalid options given in code
        _outbound.active = True
        _hooks.start(self.library_supported)
        _hooks.when_imported("httpcore", _wrap_pools)  # httpx sends through httpcore's pools

    def _uninstrument(self, **kwargs: Any) -> None:
        _outbound.active = False
        _hooks.stop()
        try:
            httpcore = imported("httpcore")
            if httpcore is not None:
                for owner, name, wrapper in _targets(httpcore):
                    unwrap_ours(owner, name, wrapper)
        except Exception:
            _logger.debug("posthog-otel could not uninstrument httpx", exc_info=True)
