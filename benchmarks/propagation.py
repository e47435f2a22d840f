"""Propagation benchmark: PostHog context across a process boundary, vs stock W3C baggage.

    python -m benchmarks.propagation

One round trip = inject into a fresh header dict + extract from it, carrying a distinct id,
a session id and 5 tags (7 baggage members):

- posthog-otel: ``PosthogPropagator`` from a context whose PostHog scope holds them (it also
  writes and reads the ``X-POSTHOG-*`` headers; the result is a Context holding a new Scope);
- peer: OpenTelemetry's ``W3CBaggagePropagator`` from a context whose baggage holds the same
  7 members as plain entries (the result is a Context holding them as baggage).

Target: <= 1.0x the peer.

A new request has a new scope, so the main line builds the state afresh in every iteration on
both sides (our scope: distinct id, session, 5 tags; the peer's Context: 7 baggage entries),
then injects and extracts: nothing is served from a cache. The ``same scope`` lines reuse one
state 20,000 times (our encoded members are cached per scope state, so inject is a lookup).
"""

from __future__ import annotations

from collections.abc import Callable

from ._timing import compare, ratio_line

TAGS = {
    "plan": "pro",
    "$current_url": "https://app.example.com/checkout?step=2",
    "seats": 12,
    "beta": True,
    "region": "eu west",
}


def _fresh_ours() -> Callable[[], object]:
    from opentelemetry.context import Context

    import posthog_otel as ph
    from posthog_otel.context import context_with_scope
    from posthog_otel.propagation.destination import with_destination
    from posthog_otel.propagation.propagator import PosthogPropagator

    propagator = PosthogPropagator()
    empty = Context()
    # bound for an internal host (a propagation target), as in the same-scope lines: an
    # unknown destination gets nothing, which would time a withheld inject
    outbound = with_destination("http://billing/", empty)

    def round_trip() -> object:
        scope = ph.Scope(fresh=True)
        scope.set_distinct_id("user-123")
        scope.set_session_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
        scope.update_tags(TAGS)
        carrier: dict[str, str] = {}
        propagator.inject(carrier, context_with_scope(scope, outbound))
        return propagator.extract(carrier, empty)

    return round_trip


def _fresh_peer() -> Callable[[], object]:
    from opentelemetry import baggage
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.context import Context

    propagator = W3CBaggagePropagator()
    empty = Context()

    def round_trip() -> object:
        ctx = baggage.set_baggage("posthog.distinct_id", "user-123", empty)
        ctx = baggage.set_baggage("posthog.session_id", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", ctx)
        for key, value in TAGS.items():
            ctx = baggage.set_baggage(f"posthog.tag.{key}", str(value), ctx)
        carrier: dict[str, str] = {}
        propagator.inject(carrier, ctx)
        return propagator.extract(carrier, empty)

    return round_trip


def _ours() -> tuple[Callable[[], object], Callable[[], object], Callable[[], object]]:
    from opentelemetry.context import Context

    import posthog_otel as ph
    from posthog_otel.context import context_with_scope
    from posthog_otel.propagation.destination import with_destination
    from posthog_otel.propagation.propagator import PosthogPropagator

    propagator = PosthogPropagator()
    scope = ph.Scope(fresh=True)
    scope.set_distinct_id("user-123")
    scope.set_session_id("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
    scope.update_tags(TAGS)
    # bound for an internal host (a propagation target): an unknown destination gets nothing
    ctx = with_destination("http://billing/", context_with_scope(scope, Context()))
    empty = Context()

    def round_trip() -> object:
        carrier: dict[str, str] = {}
        propagator.inject(carrier, ctx)
        return propagator.extract(carrier, empty)

    def inject() -> object:
        carrier: dict[str, str] = {}
        propagator.inject(carrier, ctx)
        return carrier

    sent: dict[str, str] = {}
    propagator.inject(sent, ctx)

    def extract() -> object:
        return propagator.extract(sent, empty)

    return round_trip, inject, extract


def _peer() -> tuple[Callable[[], object], Callable[[], object], Callable[[], object]]:
    from opentelemetry import baggage
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.context import Context

    propagator = W3CBaggagePropagator()
    ctx = Context()
    ctx = baggage.set_baggage("posthog.distinct_id", "user-123", ctx)
    ctx = baggage.set_baggage("posthog.session_id", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", ctx)
    for key, value in TAGS.items():
        ctx = baggage.set_baggage(f"posthog.tag.{key}", str(value), ctx)
    empty = Context()

    def round_trip() -> object:
        carrier: dict[str, str] = {}
        propagator.inject(carrier, ctx)
        return propagator.extract(carrier, empty)

    def inject() -> object:
        carrier: dict[str, str] = {}
        propagator.inject(carrier, ctx)
        return carrier

    sent: dict[str, str] = {}
    propagator.inject(sent, ctx)

    def extract() -> object:
        return propagator.extract(sent, empty)

    return round_trip, inject, extract


def run() -> list[str]:
    fresh = compare({"posthog-otel": _fresh_ours(), "stock": _fresh_peer()}, calls=20_000)
    lines = [
        ratio_line(
            "new state + inject + extract (fresh scope each time)",
            fresh["posthog-otel"],
            fresh["stock"],
            1.0,
        )
    ]
    ours, peer = _ours(), _peer()
    for index, label in enumerate(
        (
            "same scope: inject+extract, identity + 5 tags",
            "    inject only (cached)",
            "    extract only",
        )
    ):
        results = compare({"posthog-otel": ours[index], "stock": peer[index]}, calls=20_000)
        lines.append(ratio_line(label, results["posthog-otel"], results["stock"], 1.0))
    return lines


def main() -> None:
    for line in run():
        print(line)


if __name__ == "__main__":
    main()
