"""A request read by contrib's middleware and then by our request handling is parsed once."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.instrumentation.asgi import asgi_getter
from opentelemetry.instrumentation.wsgi import wsgi_getter

import posthog_otel as ph
from posthog_otel.instrumentors._request import _GETTER as REQUEST_GETTER
from posthog_otel.propagation import baggage as bg
from posthog_otel.propagation.propagator import PosthogPropagator


class LowerGetter:
    """Our request handling's getter: lower-case header names."""

    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key.lower())
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


def environ(**headers: str) -> dict[str, Any]:
    return {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}


def asgi_scope(**headers: str) -> dict[str, Any]:
    return {"type": "http", "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}


# contrib's server middleware: (carrier builder, getter); ours reads with either getter (the
# request getter lets the propagator read the mapping itself, the plain one is called per header)
SERVERS = {"wsgi": (environ, wsgi_getter), "asgi": (asgi_scope, asgi_getter)}
READERS = {"plain getter": LowerGetter(), "request getter": REQUEST_GETTER}


REQUESTS = [
    {},
    {"x-posthog-distinct-id": "user-1"},
    {"x-posthog-distinct-id": "user-1", "x-posthog-session-id": "s-1"},
    {"baggage": "posthog.distinct_id=u-2,posthog.tag.plan=pro,other=1"},
    {
        "x-posthog-distinct-id": "user-3",
        "baggage": "posthog.distinct_id=u-2,posthog.tag.a,posthog.tag.b=2",
    },
]


@pytest.mark.parametrize("headers", REQUESTS)
@pytest.mark.parametrize("trust", ["all", "headers", "none"])
@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("reader", READERS)
def test_the_second_read_gives_what_a_fresh_read_gives(
    headers: dict[str, str], trust: str, server: str, reader: str
) -> None:
    carrier, server_getter = SERVERS[server]
    getter: Any = READERS[reader]
    propagator = PosthogPropagator(trust_inbound=trust)
    fresh = propagator.inbound_state(headers, LowerGetter())
    assert propagator.inbound_state(headers, getter) == fresh
    extracted = propagator.extract(carrier(**headers), Context(), getter=server_getter)
    token = otel_context.attach(extracted)
    try:
        reused = propagator.inbound_state(headers, getter)
    finally:
        otel_context.detach(token)
    assert (dict(reused[0]), dict(reused[1])) == (dict(fresh[0]), dict(fresh[1]))
    scope = ph.current_scope(extracted)
    found = scope.resolve() if scope is not None else None
    assert dict(reused[0]) == (dict(found.ids) if found else {})
    assert dict(reused[1]) == (dict(found.tags) if found else {})


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("reader", READERS)
def test_the_first_extraction_is_reused_and_never_parsed_again(server: str, reader: str) -> None:
    carrier, server_getter = SERVERS[server]
    propagator = PosthogPropagator(trust_inbound="all")
    headers = {
        "x-posthog-session-id": "s-9",
        "baggage": "posthog.distinct_id=u-2,posthog.tag.a,posthog.tag.b=2",
    }
    before = bg.stats().get("inbound_malformed", 0)
    extracted = propagator.extract(carrier(**headers), Context(), getter=server_getter)
    once = bg.stats().get("inbound_malformed", 0)
    assert once > before  # the bad member is counted by the first read
    token = otel_context.attach(extracted)
    try:
        ids, _ = propagator.inbound_state(headers, READERS[reader])
    finally:
        otel_context.detach(token)
    assert dict(ids) == {"distinct_id": "u-2", "session_id": "s-9"}
    assert bg.stats().get("inbound_malformed", 0) == once  # not parsed (or counted) again


def test_other_headers_or_another_propagator_read_again() -> None:
    propagator = PosthogPropagator(trust_inbound="all")
    extracted = propagator.extract(
        environ(**{"x-posthog-distinct-id": "first"}), Context(), getter=wsgi_getter
    )
    token = otel_context.attach(extracted)
    try:
        other_request = propagator.inbound_state({"x-posthog-distinct-id": "second"}, LowerGetter())
        other_policy = PosthogPropagator(trust_inbound="none").inbound_state(
            {"x-posthog-distinct-id": "first"}, LowerGetter()
        )
    finally:
        otel_context.detach(token)
    assert dict(other_request[0]) == {"distinct_id": "second"}
    assert dict(other_policy[0]) == {}


def test_a_scope_changed_after_extraction_does_not_change_what_came_in() -> None:
    propagator = PosthogPropagator()
    headers = {"x-posthog-distinct-id": "from-header"}
    extracted = propagator.extract(environ(**headers), Context(), getter=wsgi_getter)
    token = otel_context.attach(extracted)
    try:
        ph.identify_context("changed-by-app")
        ids, _ = propagator.inbound_state(headers, LowerGetter())
    finally:
        otel_context.detach(token)
    assert dict(ids) == {"distinct_id": "from-header"}


class CaseSensitiveGetter:
    """A getter over a dict that finds only the exact name asked (like the default getter)."""

    def get(self, carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return None if value is None else [value]

    def keys(self, carrier: dict[str, str]) -> list[str]:
        return list(carrier)


class CaseSensitiveAsgiGetter(type(asgi_getter)):  # type: ignore[misc]
    """A subclass of contrib's ASGI getter that matches names exactly: asked both ways."""

    def get(self, carrier: dict[str, Any], key: str) -> list[str] | None:
        found = [v.decode() for k, v in carrier.get("headers") or () if k.decode() == key]
        return found or None


@pytest.mark.parametrize(
    ("getter", "carrier"),
    [
        (CaseSensitiveGetter(), {"x-posthog-distinct-id": "lower"}),
        (CaseSensitiveGetter(), {"X-POSTHOG-DISTINCT-ID": "lower"}),
        (CaseSensitiveAsgiGetter(), asgi_scope(**{"x-posthog-distinct-id": "lower"})),
        (asgi_getter, asgi_scope(**{"X-PostHog-Distinct-Id": "lower"})),
        (wsgi_getter, environ(**{"x-posthog-distinct-id": "lower"})),
    ],
)
def test_a_header_is_found_in_either_case_by_every_getter(getter: Any, carrier: Any) -> None:
    ids, _ = PosthogPropagator(trust_inbound="headers").inbound_state(carrier, getter)
    assert dict(ids) == {"distinct_id": "lower"}
