"""What a request carried in: read once, reused by the next reader of the same request.

A server request is usually read twice: contrib's middleware extracts the global propagator
into the Context it attaches, then our request handling asks for the PostHog state again.
:meth:`PosthogPropagator.extract`, when it finds PostHog state, records what it read and found
in the Context it returns (a request without any leaves the Context as it was);
:meth:`PosthogPropagator.inbound_state` reuses that record when the current Context holds one
from the same propagator and the same header values, and reads the headers itself otherwise.
The result is the same either way: extraction depends only on those values and the
propagator's settings.

    ctx = remember(ctx, Extracted(propagator, seen, ids, tags))
    found = recall(propagator, seen)      # the Extracted, or None when anything differs
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context

__all__ = ["Extracted", "recall", "remember", "seen_values"]

_KEY = otel_context.create_key("posthog-otel-inbound")


@dataclass(frozen=True, slots=True)
class Extracted:
    """One extraction: the propagator, the header values it read, what it found (copies)."""

    propagator: object
    seen: tuple[Any, ...]
    ids: Mapping[str, str]
    tags: Mapping[str, Any]


def seen_values(values: Any) -> Any:
    """A comparable form of what a getter returned for one header."""
    if values is None or isinstance(values, str | bytes):
        return values
    try:
        return tuple(values)
    except TypeError:
        return values


def remember(ctx: Context, inbound: Extracted) -> Context:
    return otel_context.set_value(_KEY, inbound, ctx)


def recall(
    propagator: object, seen: tuple[Any, ...], ctx: Context | None = None
) -> Extracted | None:
    found = otel_context.get_value(_KEY, ctx)
    if isinstance(found, Extracted) and found.propagator is propagator and found.seen == seen:
        return found
    return None
