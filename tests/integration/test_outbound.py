"""The requests and httpx instrumentors against a real loopback server.

``api.example.com`` (a non-target) and ``billing`` (a single-label, internal name) both resolve
to 127.0.0.1 inside these tests only; every other name is refused, so nothing leaves the
machine. Each case runs with and without contrib's instrumentation of the same client, and
with the global propagators in different orders.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import pytest
import requests
import requests.adapters
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.propagate import get_global_textmap, set_global_textmap
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import posthog_otel as ph
from posthog_otel.instrumentors import httpx as ph_httpx
from posthog_otel.instrumentors import requests as ph_requests
from posthog_otel.instrumentors.httpx import PosthogHttpxInstrumentor
from posthog_otel.instrumentors.requests import PosthogRequestsInstrumentor
from posthog_otel.propagation.propagator import PosthogPropagator
from tests.support.http_echo import EchoServer, loopback_names

ORIGINAL_ADAPTER_SEND = requests.adapters.HTTPAdapter.send
ORIGINAL_SESSION_SEND = requests.Session.send
ORIGINAL_POOL = httpcore.ConnectionPool.handle_request
ORIGINAL_ASYNC_POOL = httpcore.AsyncConnectionPool.handle_async_request
ORIGINAL_TRANSPORT = httpx.HTTPTransport.handle_request

TEXTMAPS = {
    "default": lambda: [TraceContextTextMapPropagator(), W3CBaggagePropagator()],
    "posthog_last": lambda: [
        TraceContextTextMapPropagator(),
        W3CBaggagePropagator(),
        PosthogPropagator(),
    ],
    "posthog_first": lambda: [
        PosthogPropagator(),
        TraceContextTextMapPropagator(),
        W3CBaggagePropagator(),
    ],
}


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _resolver() -> Iterator[None]:
    with loopback_names("api.example.com", "billing"):
        yield


@pytest.fixture
def ours() -> Iterator[None]:
    PosthogRequestsInstrumentor().instrument()
    PosthogHttpxInstrumentor().instrument()
    yield
    PosthogRequestsInstrumentor().uninstrument()
    PosthogHttpxInstrumentor().uninstrument()


@pytest.fixture
def textmap(request: pytest.FixtureRequest) -> Iterator[str]:
    previous = get_global_textmap()
    name = getattr(request, "param", "default")
    set_global_textmap(CompositePropagator(TEXTMAPS[name]()))
    yield name
    set_global_textmap(previous)


@pytest.fixture
def contrib(request: pytest.FixtureRequest) -> Iterator[bool]:
    enabled = getattr(request, "param", False)
    if enabled:
        provider = TracerProvider()
        RequestsInstrumentor().instrument(tracer_provider=provider)
        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    yield enabled
    if enabled:
        RequestsInstrumentor().uninstrument()
        HTTPXClientInstrumentor().uninstrument()


def send(client: str, url: str) -> None:
    if client == "requests":
        session = requests.Session()
        session.trust_env = False
        assert session.get(url, timeout=10).status_code == 200
    elif client == "httpx":
        with httpx.Client(trust_env=False, follow_redirects=True) as sync_client:
            assert sync_client.get(url, timeout=10).status_code == 200
    else:

        async def call() -> int:
            async with httpx.AsyncClient(trust_env=False, follow_redirects=True) as async_client:
                return (await async_client.get(url, timeout=10)).status_code

        assert asyncio.run(call()) == 200


def posthog_members(headers: dict[str, list[str]]) -> list[str]:
    members = ",".join(headers.get("baggage", [])).split(",")
    return [m.split("=", 1)[0] for m in members if m.startswith("posthog.")]


def in_scope(fn: Any) -> None:
    ctx = baggage.set_baggage("other", "x")
    ctx = baggage.set_baggage("posthog.tag.from_baggage", "y", ctx)
    token = otel_context.attach(ctx)
    try:
        with ph.new_context():
            ph.identify_context("user-1")
            ph.set_context_session("session-1")
            ph.tag("plan", "pro")
            fn()
    finally:
        otel_context.detach(token)


CLIENTS = ["requests", "httpx", "httpx_async"]


@pytest.mark.usefixtures("ours")
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("contrib", [False, True], indirect=True, ids=["plain", "contrib"])
@pytest.mark.parametrize("textmap", list(TEXTMAPS), indirect=True)
def test_targets_get_one_copy_and_public_hosts_none(
    echo: EchoServer, client: str, contrib: bool, textmap: str
) -> None:
    in_scope(lambda: send(client, echo.url("billing")))
    internal = echo.last()
    assert internal["x-posthog-distinct-id"] == ["user-1"]
    assert internal["x-posthog-session-id"] == ["session-1"]
    assert len(internal["baggage"]) == 1  # one header line
    assert sorted(posthog_members(internal)) == [
        "posthog.distinct_id",
        "posthog.session_id",
        "posthog.tag.from_baggage",
        "posthog.tag.plan",
    ]
    assert ("other=x" in internal["baggage"][0].split(",")) is contrib

    in_scope(lambda: send(client, echo.url("api.example.com")))
    public = echo.last()
    assert public["host"][0].startswith("api.example.com:")
    assert posthog_members(public) == []
    assert not [name for name in public if name.startswith("x-posthog")]
    if contrib:  # other baggage members and trace context still go
        assert public["baggage"] == ["other=x"]
        assert "traceparent" in public
    else:
        assert "baggage" not in public


@pytest.mark.usefixtures("ours", "textmap")
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("contrib", [False, True], indirect=True, ids=["plain", "contrib"])
def test_a_redirect_to_a_public_host_drops_what_the_first_hop_carried(
    echo: EchoServer, client: str, contrib: bool
) -> None:
    url = echo.url("billing", "/redirect?to=" + echo.url("api.example.com", "/final"))
    in_scope(lambda: send(client, url))
    first, final = echo.requests[-2], echo.requests[-1]
    assert first["x-posthog-distinct-id"] == ["user-1"]
    assert final["host"][0].startswith("api.example.com:")
    assert posthog_members(final) == []
    assert not [name for name in final if name.startswith("x-posthog")]


@pytest.mark.usefixtures("ours", "textmap")
@pytest.mark.parametrize("client", CLIENTS)
def test_nothing_outside_a_context_and_nothing_when_suppressed(
    echo: EchoServer, client: str
) -> None:
    send(client, echo.url("billing"))
    assert "baggage" not in echo.last() and "x-posthog-distinct-id" not in echo.last()

    def suppressed() -> None:
        with suppress_instrumentation():
            send(client, echo.url("billing"))

    in_scope(suppressed)
    assert "baggage" not in echo.last() and "x-posthog-distinct-id" not in echo.last()


@pytest.mark.usefixtures("textmap")
@pytest.mark.parametrize("client", CLIENTS)
def test_configured_targets(echo: EchoServer, client: str) -> None:
    PosthogRequestsInstrumentor().instrument(propagation_targets=["api.example.com"])
    PosthogHttpxInstrumentor().instrument(propagation_targets=["api.example.com"])
    try:
        in_scope(lambda: send(client, echo.url("api.example.com")))
        assert echo.last()["x-posthog-distinct-id"] == ["user-1"]
        in_scope(lambda: send(client, echo.url("billing")))  # replaced: no longer a target
        assert "x-posthog-distinct-id" not in echo.last()
    finally:
        PosthogRequestsInstrumentor().uninstrument()
        PosthogHttpxInstrumentor().uninstrument()


def test_the_global_posthog_propagator_sets_the_policy(echo: EchoServer) -> None:
    previous = get_global_textmap()
    set_global_textmap(PosthogPropagator(propagation_targets=["api.example.com"]))
    PosthogRequestsInstrumentor().instrument()
    try:
        in_scope(lambda: send("requests", echo.url("api.example.com")))
        assert echo.last()["x-posthog-distinct-id"] == ["user-1"]
    finally:
        PosthogRequestsInstrumentor().uninstrument()
        set_global_textmap(previous)


@pytest.mark.usefixtures("ours", "textmap")
@pytest.mark.parametrize("client", CLIENTS)
def test_a_failing_hook_never_breaks_the_request(
    echo: EchoServer, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("hook bug")

    monkeypatch.setattr(ph_requests, "with_destination", broken)
    monkeypatch.setattr(ph_httpx, "with_destination", broken)
    in_scope(lambda: send(client, echo.url("billing")))  # no exception, the request went
    assert "x-posthog-distinct-id" not in echo.last()


@pytest.mark.parametrize("contrib_first", [True, False])
def test_any_instrument_order_and_uninstrument_restore_everything(
    echo: EchoServer, contrib_first: bool
) -> None:
    provider = TracerProvider()
    steps = [
        lambda: RequestsInstrumentor().instrument(tracer_provider=provider),
        lambda: HTTPXClientInstrumentor().instrument(tracer_provider=provider),
        lambda: PosthogRequestsInstrumentor().instrument(),
        lambda: PosthogHttpxInstrumentor().instrument(),
    ]
    for step in steps if contrib_first else steps[::-1]:
        step()
    try:
        for client in CLIENTS:
            in_scope(lambda client=client: send(client, echo.url("billing")))
            assert echo.last()["x-posthog-distinct-id"] == ["user-1"]
            assert "traceparent" in echo.last()
    finally:
        PosthogRequestsInstrumentor().uninstrument()
        PosthogHttpxInstrumentor().uninstrument()
        RequestsInstrumentor().uninstrument()
        HTTPXClientInstrumentor().uninstrument()
    assert requests.adapters.HTTPAdapter.send is ORIGINAL_ADAPTER_SEND
    assert requests.Session.send is ORIGINAL_SESSION_SEND
    assert httpcore.ConnectionPool.handle_request is ORIGINAL_POOL
    assert httpcore.AsyncConnectionPool.handle_async_request is ORIGINAL_ASYNC_POOL
    assert httpx.HTTPTransport.handle_request is ORIGINAL_TRANSPORT
    in_scope(lambda: send("requests", echo.url("billing")))
    assert "x-posthog-distinct-id" not in echo.last()


def test_reinstrument_after_being_wrapped_over_does_not_double_wrap(echo: EchoServer) -> None:
    import wrapt

    def outer(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    PosthogRequestsInstrumentor().instrument()
    wrapt.wrap_function_wrapper(requests.adapters.HTTPAdapter, "send", outer)
    try:
        PosthogRequestsInstrumentor().uninstrument()  # ours is inner: left in place, inert
        in_scope(lambda: send("requests", echo.url("billing")))
        assert "x-posthog-distinct-id" not in echo.last()
        PosthogRequestsInstrumentor().instrument()  # reused, not wrapped twice
        in_scope(lambda: send("requests", echo.url("billing")))
        assert echo.last()["x-posthog-distinct-id"] == ["user-1"]
    finally:
        PosthogRequestsInstrumentor().uninstrument()
        requests.adapters.HTTPAdapter.send = ORIGINAL_ADAPTER_SEND  # type: ignore[method-assign]


def test_instrumentation_dependencies() -> None:
    assert PosthogRequestsInstrumentor().instrumentation_dependencies() == ("requests ~= 2.0",)
    assert PosthogHttpxInstrumentor().instrumentation_dependencies() == ("httpx >= 0.18.0",)


def test_entry_points_are_registered() -> None:
    from importlib.metadata import entry_points

    instrumentors = {e.name: e.value for e in entry_points(group="opentelemetry_instrumentor")}
    assert instrumentors["posthog_requests"] == (
        "posthog_otel.instrumentors.requests:PosthogRequestsInstrumentor"
    )
    assert (
        instrumentors["posthog_httpx"]
        == "posthog_otel.instrumentors.httpx:PosthogHttpxInstrumentor"
    )
    (propagator,) = entry_points(group="opentelemetry_propagator", name="posthog")
    assert propagator.load() is PosthogPropagator
