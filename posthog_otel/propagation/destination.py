"""Where an outbound request goes: the destination that decides whether PostHog state is sent.

The propagator sends PostHog identity and tags only to propagation targets; it learns the
destination from the Context. Our outbound instrumentors name it explicitly
(:func:`with_destination`); otherwise an HTTP CLIENT span's attributes name it.

    ctx = with_destination("https://billing.internal/charge")
    destination_of(ctx)        # "billing.internal"
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context, create_key

from ..context import runtime
from .targets import host_of, normalize_host

__all__ = ["destination_of", "with_destination"]

_DESTINATION_KEY = create_key("posthog-otel-destination")
_CLIENT = trace.SpanKind.CLIENT
_get_current = runtime.get_current


def with_destination(
    url: str | None, context: Context | None = None, *, host: str | None = None
) -> Context:
    """A copy of ``context`` (default: current) naming the outbound destination.

    ``url`` is a URL or a bare host (or pass ``host=`` directly). A URL whose host cannot be
    read counts as a destination that is not a target (nothing PostHog is sent to it).
    Neither given makes the destination unknown again.
    """
    ctx = _get_current() if context is None else context
    if host is not None:
        host = normalize_host(host)
    elif url is not None:
        host = host_of(url) or ""
    new = Context(ctx)
    dict.__setitem__(new, _DESTINATION_KEY, host)  # a fresh copy, not yet shared
    return new


def destination_of(context: Context | None = None) -> str | None:
    """The destination host an inject in ``context`` goes to, or None when unknown."""
    ctx = _get_current() if context is None else context
    host: str | None = ctx.get(_DESTINATION_KEY)  # type: ignore[assignment]
    if host is not None:
        return host
    return _span_destination(ctx)


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
