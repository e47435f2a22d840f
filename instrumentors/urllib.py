"""PostHog context on outgoing ``urllib.request`` calls, toward propagation targets only.

Usage::

    from .urllib import PosthogUrllibInstrumentor

    PosthogUrllibInstrumentor().instrument()                      # targets from the env
    PosthogUrllibInstrumentor().instrument(propagation_targets=["internal", "*.mycorp.com"])

or zero-code: ``opentelemetry-instrument`` loads it (entry point ``posthog_urllib``).

Every HTTP(S) request ``urllib.request.urlopen`` (or any ``OpenerDirector``) sends gets, when
its host is a propagation target, the current scope's ``posthog.*`` baggage members and
``X-POSTHOG-*`` headers; any other host gets none of them, whoever wrote them (contrib's
``URLLibInstrumentor`` with the stock baggage propagator, a header copied by a redirect);
other baggage members go through untouched.

It wraps ``urllib.request.AbstractHTTPHandler.do_open``, which every HTTP and HTTPS handler
calls once per hop with the final request, below contrib's wrapper of
``OpenerDirector._open``. The destination is the host of the request's full URL (not the
proxy's). ``uninstrument()`` restores the method; requests run with
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

__all__ = ["PosthogUrllibInstrumentor"]

_logger = logging.getLogger("posthog_otel")
_outbound = Outbound()


def _apply(request: Any) -> None:
    """Apply the policy to ``request.headers`` and ``request.unredirected_hdrs``.

    urllib stores header names ``capitalize()``-d (``X-posthog-distinct-id``); the policy runs
    on a plain copy and the result is written back in urllib's spelling.
    """
    url = request.get_full_url()
    for attribute in ("unredirected_hdrs", "headers"):
        stored = getattr(request, attribute, None)
        if not isinstance(stored, dict):
            continue
        copied = dict(stored)
        if attribute == "headers":
            _outbound.apply(copied, url)
        else:
            _outbound.propagator().withhold(copied)  # ours go in ``headers`` only
        stored.clear()
        for name, value in copied.items():
            stored[name.capitalize()] = value


def _do_open(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _outbound.active:
        try:
            request = args[1] if len(args) > 1 else kwargs.get("req")
            if request is not None and is_instrumentation_enabled():
                _apply(request)
        except Exception:
            _logger.debug("posthog-otel urllib hook failed", exc_info=True)
    return wrapped(*args, **kwargs)


class PosthogUrllibInstrumentor(PosthogLibraryInstrumentor):
    """Adds PostHog context to outgoing ``urllib.request`` calls toward propagation targets.

    Options of ``instrument()``: ``propagation_targets`` (patterns; default: the
    ``PosthogPropagator`` in the global textmap, else ``POSTHOG_OTEL_PROPAGATION_TARGETS``,
    else internal hosts only) or ``propagator`` (a ``PosthogPropagator``).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        _outbound.configure(kwargs)  # ValueError for invalid options given in code
        _outbound.active = True
        _hooks.start(self.library_supported)
        _hooks.when_imported("urllib.request", _wrap)

    def _uninstrument(self, **kwargs: Any) -> None:
        _outbound.active = False
        _hooks.stop()
        try:
            module = imported("urllib.request")
            if module is not None:
                unwrap_ours(module.AbstractHTTPHandler, "do_open", _do_open)
        except Exception:
            _logger.debug("posthog-otel could not uninstrument urllib", exc_info=True)


_hooks = ImportHooks("urllib")


def _wrap(module: Any) -> None:
    owner = module.AbstractHTTPHandler
    if not find_wrapper(owner.__dict__.get("do_open"), _do_open):
        wrapt.wrap_function_wrapper(owner, "do_open", _do_open)
