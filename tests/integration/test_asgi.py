"""ASGI middleware with FastAPI served by uvicorn on 127.0.0.1, with and without contrib."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import requests
from fastapi import BackgroundTasks, FastAPI, WebSocket
from fastapi.responses import StreamingResponse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import posthog_otel as posthog
from posthog_otel import PosthogSpanProcessor, global_client
from posthog_otel.instrumentors.asgi import (
    PosthogASGIMiddleware,
    PosthogStarletteInstrumentor,
    instrument_app,
)
from posthog_otel.testing import CapturedEvents
from posthog_otel.testing.capture_server import CaptureServer
from tests.support.routing import route_to
from tests.support.servers import uvicorn_server

HEADERS = {
    "X-POSTHOG-DISTINCT-ID": "web-user",
    "X-POSTHOG-SESSION-ID": "web-session",
    "User-Agent": "pytest-browser/1.0",
}


def _app(seen: dict[str, Any]) -> FastAPI:
    app = FastAPI()

    @app.get("/async")
    async def async_route() -> dict[str, Any]:
        posthog.tag("route_kind", "async")
        posthog.capture("async_viewed")
        return {"user": posthog.get_context_distinct_id(), "tags": posthog.get_tags()}

    @app.get("/sync")
    def sync_route() -> dict[str, Any]:  # runs in a worker thread
        posthog.capture("sync_viewed")
        return {"user": posthog.get_context_distinct_id()}

    @app.get("/background")
    async def background(tasks: BackgroundTasks) -> dict[str, str]:
        def later() -> None:
            seen["background_user"] = posthog.get_context_distinct_id()
            posthog.capture("background_done")

        tasks.add_task(later)
        return {"ok": "yes"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                await asyncio.sleep(0)
                yield f"{i}:{posthog.get_context_distinct_id()}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/login")
    async def login() -> dict[str, bool]:
        posthog.identify_context("late-user")
        return {"ok": True}

    @app.get("/boom")
    async def boom() -> None:
        posthog.tag("step", "charge")
        raise RuntimeError("card declined")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(str(posthog.get_context_distinct_id()))
        await websocket.close()

    return app


def test_request_context_routes_background_and_streaming(events: CapturedEvents) -> None:
    seen: dict[str, Any] = {}
    app = instrument_app(_app(seen))
    with uvicorn_server(app) as url:
        body = requests.get(url + "/async?x=1", headers=HEADERS, timeout=10).json()
        assert body["user"] == "web-user"
        assert body["tags"]["$request_path"] == "/async"
        assert body["tags"]["$current_url"] == url + "/async?x=1"
        assert body["tags"]["$request_method"] == "GET"
        assert body["tags"]["$ip"] == "127.0.0.1"
        assert (
            body["tags"]["$user_agent"] == body["tags"]["$raw_user_agent"] == "pytest-browser/1.0"
        )
        assert requests.get(url + "/sync", headers=HEADERS, timeout=10).json() == {
            "user": "web-user"
        }
        requests.get(url + "/background", headers=HEADERS, timeout=10)
        stream = requests.get(url + "/stream", headers=HEADERS, timeout=10).text
        assert stream == "0:web-user\n1:web-user\n2:web-user\n"
        events.wait_for(3)
    assert seen["background_user"] == "web-user"
    for name in ("async_viewed", "sync_viewed", "background_done"):
        (event,) = events.named(name)
        assert event["distinct_id"] == "web-user"
        assert event["properties"]["$session_id"] == "web-session"


def test_exception_becomes_500_and_one_exception_event(events: CapturedEvents) -> None:
    app = instrument_app(_app({}))
    with uvicorn_server(app) as url:
        assert requests.get(url + "/boom", headers=HEADERS, timeout=10).status_code == 500
    (event,) = events.named("$exception")
    assert event["distinct_id"] == "web-user"
    assert event["properties"]["step"] == "charge"
    assert event["properties"]["$request_path"] == "/boom"
    (entry,) = event["properties"]["$exception_list"]
    assert entry["value"] == "card declined"
    assert entry["mechanism"]["handled"] is False


def test_websocket_connection_has_its_context(events: CapturedEvents) -> None:
    from starlette.testclient import TestClient

    app = instrument_app(_app({}))
    with TestClient(app) as client, client.websocket_connect("/ws", headers=HEADERS) as ws:
        assert ws.receive_text() == "web-user"


def test_concurrent_requests_keep_their_own_identity(events: CapturedEvents) -> None:
    app = instrument_app(_app({}))
    results: list[tuple[str, str]] = []
    lock = threading.Lock()

    def call(url: str, i: int) -> None:
        headers = {"X-POSTHOG-DISTINCT-ID": f"user-{i}"}
        user = requests.get(url + "/async", headers=headers, timeout=10).json()["user"]
        with lock:
            results.append((f"user-{i}", user))

    with uvicorn_server(app) as url:
        threads = [threading.Thread(target=call, args=(url, i)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 30
    assert all(expected == got for expected, got in results)
    assert sorted(e["distinct_id"] for e in events.named("async_viewed")) == sorted(
        f"user-{i}" for i in range(30)
    )


def test_with_contrib_fastapi_instrumentation_either_order(events: CapturedEvents) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    client = global_client.get_client()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(client))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    route_to(provider)
    for ours_first in (True, False):
        app = _app({})
        if ours_first:
            instrument_app(app)
            FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
        else:
            FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
            instrument_app(app)
        spans.clear()
        events.clear()
        with uvicorn_server(app) as url:
            assert requests.get(url + "/boom", headers=HEADERS, timeout=10).status_code == 500
        (server_span,) = [s for s in spans.get_finished_spans() if s.name == "GET /boom"]
        assert (server_span.attributes or {})["posthog.distinct_id"] == "web-user"
        assert len(events.named("$exception")) == 1
        FastAPIInstrumentor.uninstrument_app(app)
    provider.shutdown()


def test_user_identified_in_a_view_owns_the_frameworks_own_server_span(
    events: CapturedEvents,
) -> None:
    """FastAPI's built-in tracing starts the server span outside all user middleware, before
    any PostHog context exists; the request's context still becomes the span's, so a user
    identified in the view owns the request's event."""
    pytest.importorskip("fastapi.telemetry")
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(global_client.get_client()))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    route_to(provider)
    app = instrument_app(_app({}))
    with uvicorn_server(app) as url:
        assert requests.get(url + "/login", timeout=10).json() == {"ok": True}
    provider.force_flush()
    (root,) = [s for s in spans.get_finished_spans() if s.parent is None]
    assert root.instrumentation_scope is not None
    assert root.instrumentation_scope.name == "fastapi"  # the framework's span, not contrib's
    assert (root.attributes or {})["posthog.tag.$request_path"] == "/login"
    root_id = format(root.context.span_id, "016x")
    (event,) = [e for e in events.all if e["properties"].get("$span_id") == root_id]
    assert event["distinct_id"] == "late-user"
    assert event["properties"]["$request_path"] == "/login"
    provider.shutdown()


def test_instrumentor_adds_middleware_to_new_apps(events: CapturedEvents) -> None:
    instrumentor = PosthogStarletteInstrumentor()
    instrumentor.instrument()
    try:
        app = _app({})
        assert any(m.cls is PosthogASGIMiddleware for m in app.user_middleware)
        instrument_app(app)  # idempotent
        assert sum(m.cls is PosthogASGIMiddleware for m in app.user_middleware) == 1
    finally:
        instrumentor.uninstrument()
    assert not any(m.cls is PosthogASGIMiddleware for m in _app({}).user_middleware)


def test_request_filter_extra_tags_and_tag_map(events: CapturedEvents) -> None:
    app = _app({})
    instrument_app(
        app,
        request_filter=lambda scope: scope["path"] != "/sync",
        extra_tags=lambda scope: {"tenant": "acme"},
        tag_map=lambda tags: {k: v for k, v in tags.items() if k != "$user_agent"},
        trust_proxy_headers=True,
    )
    with uvicorn_server(app) as url:
        body = requests.get(
            url + "/async",
            headers={**HEADERS, "X-Forwarded-For": "203.0.113.7, 10.0.0.1"},
            timeout=10,
        ).json()
        assert requests.get(url + "/sync", headers=HEADERS, timeout=10).json() == {"user": None}
    assert body["tags"]["tenant"] == "acme"
    assert "$user_agent" not in body["tags"]
    assert body["tags"]["$ip"] == "203.0.113.7"


def test_failing_callbacks_never_break_the_request(events: CapturedEvents) -> None:
    def broken(_: Any) -> Any:
        raise ValueError("bad callback")

    app = instrument_app(_app({}), extra_tags=broken, request_filter=broken)
    with uvicorn_server(app) as url:
        assert (
            requests.get(url + "/async", headers=HEADERS, timeout=10).json()["user"] == "web-user"
        )


def test_end_to_end_fastapi_with_downstream(capture_server: CaptureServer) -> None:
    from tests.support.e2e import check_end_to_end, run_upstream

    status, upstream_err = run_upstream(
        capture_server, "tests/support/apps/fastapi_shop.py", "fastapi-shop"
    )
    assert status == 500, upstream_err
    check_end_to_end(capture_server, "LookupError")
    (root,) = [e for e in capture_server.events if e["event"] == "GET /checkout"]
    assert root["properties"]["$request_path"] == "/checkout"
