"""Carry PostHog context by hand where OpenTelemetry instrumentation does not reach.

For custom queues, webhooks, job tables, subprocess environments: anything with a dict of
string headers.

Producer::

    headers = posthog_otel.inject({}, url="https://billing.internal/hooks")  # an HTTP call
    headers = posthog_otel.inject({}, url="internal")  # a queue or job table of your own
    queue.publish(body, headers=headers)

Consumer::

    with posthog_otel.extract(message.headers) as scope:
        handle(message)        # events carry the producer's distinct id, session and tags

``inject`` runs the global OpenTelemetry propagators (``traceparent``, ``baggage``…) and the
PostHog propagator, with the outbound policy applied to ``url``: PostHog members and
``X-POSTHOG-*`` headers are written only when ``url`` is a propagation target or the keyword
``"internal"`` (a carrier that stays inside your system). Without ``url`` the destination is
unknown and nothing PostHog is written (trace context and other baggage still are).
``extract`` reads headers in any letter case (and WSGI ``HTTP_*`` environ keys), then enters
the extracted OpenTelemetry Context with a new root PostHog scope for the block: the
producer's state when there was one, an empty scope otherwise. As with ``new_context``, an
exception leaving the block is captured once and re-raised (``capture_exceptions=False`` to
switch that off).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators import textmap

from ..context import Scope, runtime, stored_scope, without_scope
from .destination import with_destination
from .propagator import (
    PosthogPropagator,
    default_propagator,
    find_posthog_propagator,
    parts_of,
)

__all__ = ["extract", "inject"]

_logger = logging.getLogger("posthog.otel")


def _ours() -> tuple[PosthogPropagator, bool]:
    """The PostHog propagator to use and whether the global composite already ends with it."""
    textmap_ = propagate.get_global_textmap()
    found = find_posthog_propagator(textmap_)
    if found is None:
        return default_propagator(), False
    inner = parts_of(textmap_)
    last = textmap_ is found or (bool(inner) and inner[-1] is found)
    return found, last


def inject(
    headers: MutableMapping[str, Any] | None = None,
    url: str | None = None,
    *,
    context: Context | None = None,
) -> MutableMapping[str, Any]:
    """Write trace context, baggage and PostHog context into ``headers`` and return it.

    ``headers`` defaults to a new dict. ``url`` (or a bare host) is where the headers are
    going: PostHog members and ``X-POSTHOG-*`` headers are written only when it is a
    propagation target, or ``"internal"`` (your own queue, job table, subprocess). Without
    ``url`` nothing PostHog is written. Never raises.
    """
    carrier: MutableMapping[str, Any] = {} if headers is None else headers
    try:
        ctx = runtime.get_current() if context is None else context
        if url is not None:
            ctx = with_destination(url, ctx)
        propagate.inject(carrier, ctx)
        ours, done = _ours()
        if not done:  # ours not in the composite, or a stock propagator ran after it
            ours.inject(carrier, ctx)
    except Exception:
        _logger.debug("posthog-otel could not inject headers", exc_info=True)
    return carrier


class _AnyCaseGetter(textmap.Getter[Mapping[str, Any]]):
    """Header lookup in any letter case; also WSGI environ keys (``HTTP_X_POSTHOG_…``)."""

    def __init__(self, carrier: Mapping[str, Any]) -> None:
        self._lowered = {k.lower(): v for k, v in carrier.items() if isinstance(k, str)}

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        lowered = self._lowered
        value = lowered.get(key.lower())
        if value is None:
            value = lowered.get("http_" + key.lower().replace("-", "_"))
        if value is None:
            return None
        if isinstance(value, str):
            return [value]
        if isinstance(value, bytes | bytearray):
            return [bytes(value).decode("latin-1")]
        if isinstance(value, list | tuple):
            return [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in value]
        return [str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(self._lowered)


def _extract_context(headers: Mapping[str, Any] | None) -> Context:
    """The current Context updated from ``headers``, without any scope current here."""
    ctx = without_scope(runtime.get_current())
    if not headers:
        return ctx
    getter = _AnyCaseGetter(headers)
    ctx = propagate.extract(headers, ctx, getter=getter)
    if find_posthog_propagator(propagate.get_global_textmap()) is None:
        ctx = default_propagator().extract(headers, ctx, getter=getter)
    return ctx


@contextmanager
def extract(
    headers: Mapping[str, Any] | None, *, capture_exceptions: bool | None = None
) -> Iterator[Scope]:
    """Enter the context extracted from ``headers`` for the block; yields its PostHog scope.

    The scope is a new root (it does not inherit from a scope current here), holding the
    producer's distinct id, session id, window id and tags when the headers carried them.
    """
    try:
        ctx = _extract_context(headers)
    except Exception:
        _logger.debug("posthog-otel could not extract headers", exc_info=True)
        ctx = without_scope(runtime.get_current())
    scope = stored_scope(ctx)
    if scope is None or scope.entered:
        scope = Scope(fresh=True)
    ctx = without_scope(ctx)  # Scope.__enter__ below makes it current on top of ctx
    scope.capture_exceptions = capture_exceptions
    token = runtime.attach(ctx)
    try:
        with scope:
            yield scope
    finally:
        runtime.detach(token, ctx)
