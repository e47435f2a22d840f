"""What the outbound instrumentors share: the propagator to use, the policy, wrapper bookkeeping.

Each outbound instrumentor wraps the last call before its request's bytes leave (requests:
``HTTPAdapter.send``; httpx: httpcore's connection pools; urllib3:
``HTTPConnectionPool._make_request``; urllib: ``AbstractHTTPHandler.do_open``; aiohttp:
``ClientRequest.send``), below contrib's instrumentations, so the outbound policy is applied
after every other propagator has written its headers, whatever order things were instrumented
in, and with the destination named explicitly (never "unknown").

    _outbound.apply(headers, url="https://api.stripe.com/v1")   # strips posthog.* there
"""

from __future__ import annotations

import logging
from typing import Any

import wrapt
from opentelemetry.propagate import get_global_textmap

from posthog_otel.propagation.destination import with_destination
from posthog_otel.propagation.propagator import (
    PosthogPropagator,
    default_propagator,
    find_posthog_propagator,
)

__all__ = ["Outbound", "find_wrapper", "unwrap_ours"]

_logger = logging.getLogger("posthog.otel")


class Outbound:
    """The propagator an instrumentor injects with, and whether it is active.

    Given ``propagation_targets`` (or a ``propagator``), that is used; otherwise the
    ``PosthogPropagator`` in the global textmap, when there is one (so code that configured
    one gets the same policy here), else one built from the environment.
    """

    def __init__(self) -> None:
        self.active = False
        self._fixed: PosthogPropagator | None = None

    def configure(self, kwargs: dict[str, Any]) -> None:
        """Take the instrumentor's options; ``ValueError`` for invalid ones."""
        propagator = kwargs.get("propagator")
        targets = kwargs.get("propagation_targets")
        if propagator is not None and not isinstance(propagator, PosthogPropagator):
            raise ValueError("propagator must be a PosthogPropagator")
        if propagator is None and targets is not None:
            propagator = PosthogPropagator(propagation_targets=targets)
        self._fixed = propagator

    def propagator(self) -> PosthogPropagator:
        if self._fixed is not None:
            return self._fixed
        return find_posthog_propagator(get_global_textmap()) or default_propagator()

    def apply(self, headers: Any, url: str | None = None, *, host: str | None = None) -> bool:
        """Apply the outbound policy to ``headers`` bound for ``url`` (or ``host``).

        A propagation target gets the current scope's PostHog members and headers; any other
        host loses every ``posthog.*`` member and ``X-POSTHOG-*`` header, whoever wrote them.
        Returns whether the destination is a target.
        """
        context = with_destination(url, host=host)
        propagator = self.propagator()
        propagator.inject(headers, context)
        return propagator.allows(context)


def find_wrapper(attribute: Any, wrapper: Any) -> bool:
    """Whether ``wrapper`` wraps ``attribute`` at any depth (wrapt wrappers of wrappers)."""
    for _ in range(32):
        if attribute is None:
            return False
        if getattr(attribute, "_self_wrapper", None) is wrapper:
            return True
        attribute = getattr(attribute, "__wrapped__", None)
    return False


def unwrap_ours(owner: Any, name: str, wrapper: Any) -> None:
    """Remove our wrapt wrapper from ``owner.name`` when it is the outermost one.

    When something wrapped it after us, removing ours would also remove theirs: ours stays
    in place, inert (the instrumentor's ``active`` flag is off), and is reused on the next
    ``instrument()``.
    """
    try:
        attribute = owner.__dict__.get(name)
        if isinstance(attribute, wrapt.FunctionWrapper) and (
            getattr(attribute, "_self_wrapper", None) is wrapper
        ):
            setattr(owner, name, attribute.__wrapped__)
    except Exception:
        _logger.debug("posthog-otel could not unwrap %s.%s", owner, name, exc_info=True)
