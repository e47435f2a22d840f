"""Self-protection: when PostHog is down, slow or refuses us, the app does not notice.

A real app (WSGI under a threaded server, or FastAPI under uvicorn, on 127.0.0.1) captures an
event per request and has exceptions captured by our middleware, while its PostHog endpoint
is down (nothing listens), answers 401 (a wrong project API key), answers 503, or accepts the
connection and never answers (past the client's timeout). For 200 requests of each kind:

- every request gets the status code the app meant (200, 201, 404, 500), as with PostHog up;
- no request waits for PostHog (each is faster than the client's HTTP timeout);
- the ``posthog_otel`` logger says what is wrong exactly once, clearly (which failure, and
  for 401 a hint at the API key), however many batches fail; nothing at ERROR;
- the undelivered events are counted in ``stats()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
import requests

from posthog_otel import Client
from posthog_otel.delivery.transport import Transport
from posthog_otel.testing.capture_server import CaptureServer, Fault
from tests.support.procs import free_port
from tests.support.servers import uvicorn_server, wsgi_server
from tests.support.waiting import wait_until

from ._report import LONG

API_KEY = "phc_selfprotection_SECRET_0123456789"
CLIENT_TIMEOUT = 1.0
REQUESTS = 200
ROUTES = [("/ok", 200), ("/created", 201), ("/missing", 404), ("/boom", 500)]


@contextmanager
def posthog_endpoint(kind: str) -> Iterator[str]:
    """A PostHog host URL that fails in the given way."""
    if kind == "down":
        yield f"http://127.0.0.1:{free_port()}"  # nothing listens there
        return
    with CaptureServer() as server:
        fault = {
            "wrong_key": Fault(status=401),
            "unavailable": Fault(status=503),
            "black_hole": Fault(stall=3 * CLIENT_TIMEOUT),
        }[kind]
        server.fail_next(*[fault] * 10_000)
        yield server.url


EXPECTED_WARNING = {
    "down": ("unreachable", "ConnectionError"),
    "wrong_key": ("HTTP 401", "API key"),
    "unavailable": ("HTTP 503", "retrying"),
    "black_hole": ("unreachable", "ReadTimeout"),
}


def wsgi_app(client: Client) -> Any:
    from posthog_otel.instrumentors.wsgi import PosthogWSGIMiddleware

    statuses = {"/ok": "200 OK", "/created": "201 Created", "/missing": "404 Not Found"}

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ["PATH_INFO"]
        client.capture("page_viewed", properties={"path": path})
        if path == "/boom":
            raise RuntimeError("the app failed on its own")
        start_response(statuses[path], [("Content-Type", "text/plain")])
        return [b"hello"]

    return PosthogWSGIMiddleware(app, client=client)


def asgi_app(client: Client) -> Any:
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse

    from posthog_otel.instrumentors.asgi import instrument_app

    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        client.capture("page_viewed", properties={"path": "/ok"})
        return {"ok": "yes"}

    @app.get("/created")
    async def created() -> JSONResponse:
        client.capture("page_viewed", properties={"path": "/created"})
        return JSONResponse({"created": "yes"}, status_code=201)

    @app.get("/missing")
    async def missing() -> None:
        client.capture("page_viewed", properties={"path": "/missing"})
        raise HTTPException(status_code=404)

    @app.get("/boom")
    async def boom() -> None:
        client.capture("page_viewed", properties={"path": "/boom"})
        raise RuntimeError("the app failed on its own")

    return instrument_app(app, client=client)


SERVERS: dict[str, tuple[Callable[[Client], Any], Callable[[Any], AbstractContextManager[str]]]] = {
    "wsgi": (wsgi_app, wsgi_server),
    "asgi": (asgi_app, uvicorn_server),
}


def _hammer(url: str) -> tuple[list[tuple[str, int, int]], float]:
    """REQUESTS requests from 4 threads; returns (path, expected, got) and the slowest time."""
    results: list[tuple[str, int, int]] = []
    slowest = 0.0
    lock = threading.Lock()

    def worker(n: int) -> None:
        nonlocal slowest
        for i in range(n, REQUESTS, 4):
            path, expected = ROUTES[i % len(ROUTES)]
            began = time.monotonic()
            # a new connection each time: uvicorn closes one after an unhandled exception
            status = requests.get(url + path, timeout=30).status_code
            took = time.monotonic() - began
            with lock:
                results.append((path, expected, status))
                slowest = max(slowest, took)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive()
    return results, slowest


CASES = [
    (server_kind, kind)
    for server_kind in ("wsgi", "asgi")
    for kind in ("down", "wrong_key", "unavailable", "black_hole")
    # every failure kind under WSGI; ASGI repeats the two commonest unless POSTHOG_OTEL_LONG
    if LONG or server_kind == "wsgi" or kind in ("down", "wrong_key")
]


@pytest.mark.parametrize(("server_kind", "kind"), CASES)
def test_app_is_unaffected_and_warned_once(
    kind: str,
    server_kind: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Transport, "backoff_base", 0.01)
    caplog.set_level(logging.DEBUG, logger="posthog.otel")
    build_app, serve = SERVERS[server_kind]
    with posthog_endpoint(kind) as host:
        client = Client(
            API_KEY,
            host=host,
            flush_at=10,
            flush_interval=0.05,
            max_retries=1,
            timeout=CLIENT_TIMEOUT,
        )
        try:
            with serve(build_app(client)) as url:
                results, slowest = _hammer(url)
            # Let several batches fail (a black hole costs a timeout per attempt).
            wait_until(
                lambda: client.stats()["dropped_total"] >= 20,
                timeout=15,
                what=lambda: f"20 dropped events: {client.stats()}",
            )
            stats = client.stats()
        finally:
            client.shutdown(0.5)

    wrong = [(path, expected, got) for path, expected, got in results if expected != got]
    assert len(results) == REQUESTS and not wrong, wrong[:5]
    assert slowest < CLIENT_TIMEOUT, f"a request waited {slowest:.2f} s: it waited for PostHog"

    assert stats["sent"] == 0
    assert stats["dropped_total"] >= 20, stats  # several batches failed, each retried...
    ours = [r for r in caplog.records if r.name.startswith("posthog.otel")]
    warnings = [r for r in ours if r.levelno == logging.WARNING]
    assert [r for r in ours if r.levelno > logging.WARNING] == []
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # ...one warning in all
    message = warnings[0].getMessage()
    for words in EXPECTED_WARNING[kind]:
        assert words in message, message
    assert API_KEY not in caplog.text
