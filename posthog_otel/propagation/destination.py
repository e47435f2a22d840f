"""Where an outbound request goes: the destination that decides whether PostHog state is sent.

The propagator sends PostHog identity and tags only to propagation targets; it learns the
destination from the Context. Our outbound instrumentors name it explicitly
(:func:`with_destination`); otherwise a recording HTTP CLIENT span's attributes name it. When
neither does, the destination is unknown and nothing PostHog is sent (fail closed).

A carrier that never leaves your own system (a message broker, a job table, a custom queue)
is opted in with the ``internal`` destination: it always gets PostHog context, whatever the
propagation targets are (Celery's instrumentor uses it for the broker).

    ctx = with_destination("https://billing.internal/charge")
    destination_of(ctx)        # "billing.internal"
    destination_of(with_destination(INTERNAL_DESTINATION))   # INTERNAL_DESTINATION
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context, create_key

from ..context import runtime
from .targets import host_of, normalize_host

__all__ = ["INTERNAL_DESTINATION", "destination_of", "is_internal", "with_destination"]

INTERNAL_DESTINATION = "internal"
"""The destination keyword (any case) of a carrier that stays inside your own system."""
_INTERNAL_MARK = "\x00internal"  # never a host name: host_of() rejects control characters

_DESTINATION_KEY = create_key("posthog-otel-destination")
_CLIENT = trace.SpanKind.CLIENT
_get_current = runtime.get_current


def with_destination(
    url: str | None, context: Context | None = None, *, host: str | None = None
) -> Context:
    """A copy of ``context`` (default: current) naming the outbound destination.

    ``url`` is a URL or a bare host (or pass ``host=`` directly); the keyword ``"internal"``
    (:data:`INTERNAL_DESTINATION`) names a carrier that stays inside your own system. A URL
    whose host cannot be read counts as a destination that is not a target (nothing PostHog
    is sent to it). Neither given makes the destination unknown again (nothing is sent).
    """
    ctx = _get_current() if context is None else context
    if host is not None:
        host = normalize_host(host)
    elif url is not None:
        internal = url.strip().lower() == INTERNAL_DESTINATION
        host = _INTERNAL_MARK if internal else host_of(url) or ""
    new = Context(ctx)
    dict.__setitem__(new, _DESTINATION_KEY, host)  # a fresh copy, not yet shared
    return new


def destination_of(context: Context | None = None) -> str | None:
    """The destination host an inject in ``context`` goes to, :data:`INTERNAL_DESTINATION`
    for an internal carrier, or None when unknown."""
    ctx = _get_current() if context is None else context
    host: str | None = ctx.get(_DESTINATION_KEY)  # type: ignore[assignment]
    if host is not None:
        return INTERNAL_DESTINATION if host == _INTERNAL_MARK else host
    return _span_destination(ctx)


def is_internal(context: Context | None = None) -> bool:
    """Whether ``context`` names the internal destination (set by ``with_destination``)."""
    ctx = _get_current() if context is None else context
    return ctx.get(_DESTINATION_KEY) == _INTERNAL_MARK


def _span_destination(ctx: Context) -> str | None:
    """The server of the current HTTP CLIENT span, when the span says so."""
    span = trace.get_current_span(ctx)
    if getattr(span, "kind", None) is not _CLIENT:
        return None
    attributes = getattr(span, "attributes", None)
    if not attributes or (
        "http.request.method" not in attributes and "http.method" not in attributes
    ):
        return None
    url = attributes.get("url.full") or attributes.get("http.url")
    if isinstance(url, str):
        host = host_of(url)
        if host:
            return host
    address = attributes.get("server.address") or attributes.get("net.peer.name")
    if isinstance(address, str) and address:
        return normalize_host(address)
    return None
