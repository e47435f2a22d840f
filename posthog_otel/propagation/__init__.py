"""Context across process boundaries: the baggage codec, ``PosthogPropagator``, headers, targets.

    from posthog_otel.propagation import PosthogPropagator, inject, extract

May import the contexts, the identity vocabulary, settings and JSON encoding (``delivery``);
never the client or spans. The instrumentors use it to decide what goes out with each request
(only toward propagation targets) and what comes in.
"""

from __future__ import annotations

from .carriers import extract, inject
from .destination import INTERNAL_DESTINATION, with_destination
from .propagator import PosthogPropagator

__all__ = ["INTERNAL_DESTINATION", "PosthogPropagator", "extract", "inject", "with_destination"]
