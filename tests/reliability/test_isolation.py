"""Isolation under concurrency: no event is ever attributed to another request's person or tags.

Every request ``i`` carries its own identity and tags (``X-POSTHOG-SESSION-ID: sess-i``,
baggage ``posthog.tag.req=i`` and ``posthog.tag.shard=i%7``; even requests also
``X-POSTHOG-DISTINCT-ID: user-i``, odd ones are identified late, inside the handler), and the
handler tags ``handler_req=i``, sleeps a random moment so requests interleave, and captures an
event from the request and one from a child task or thread. Contrib's server instrumentation
and ``PosthogSpanProcessor`` turn each request's server span into an event too.

Each event's request number is read from ground truth that does not come from the context:
the URL (``$request_path`` / ``$current_url``) and, for explicit events, an ``expect``
property. Identity, session, every tag and ``$context_tags`` must belong to that request.

- FastAPI (``instrument_app`` + contrib ``FastAPIInstrumentor``), 2,000 concurrent asyncio
  requests in-process through ``httpx.ASGITransport``;
- Django's ASGI handler with our middleware: 600 concurrent asyncio requests (2,000 with
  ``POSTHOG_OTEL_LONG=1``);
- a WSGI app (``PosthogWSGIMiddleware`` inside contrib's ``OpenTelemetryMiddleware``) and
  Django's WSGI handler, each under a threaded server on 127.0.0.1 hit by 64 client threads.

Events go through the real client and transport to a loopback capture server.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as posthog
from posthog_otel import Client, PosthogSpanProcessor, global_client
from posthog_otel.testing.capture_server import CaptureServer
from tests.support.routing import route_to
from tests.support.servers import wsgi_server

from ._report import LONG, write_artifact

ASYNC_REQUESTS = 10_000 if LONG else 2_000
THREADS = 64
PER_THREAD = 40 if LONG else 8
# Django is slower per request; its default run is smaller to keep the suite's time budget.
DJANGO_ASYNC_REQUESTS = 2_000 if LONG else 600
DJANGO_PER_THREAD = 40 if LONG else 4

TAG_KEYS = {"req", "shard", "handler_req"}
_NUMBER = re.compile(r"/a?order/(\d+)")


def request_headers(i: int) -> dict[str, str]:
    headers = {
        "X-POSTHOG-SESSION-ID": f"sess-{i}",
        "baggage": f"posthog.tag.req={i},posthog.tag.shard={i % 7},other.vendor=keep",
    }
    if i % 2 == 0:
        headers["X-POSTHOG-DISTINCT-ID"] = f"user-{i}"
    return headers


def handle(i: int) -> None:
    """What every handler does inside the request (the sync part)."""
    if i % 2:
        posthog.identify_context(f"user-{i}")  # late identity
    posthog.tag("handler_req", i)


@dataclass
class Pipeline:
    server: CaptureServer
    client: Client
    provider: TracerProvider


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    with CaptureServer() as server:
        client = Client(
            "phc_isolation",
            host=server.url,
            flush_interval=0.05,
            max_queue_size=200_000,
        )
        global_client.set_client(client)
        provider = TracerProvider()
        provider.add_span_processor(PosthogSpanProcessor(client, max_queue_size=100_000))
        route_to(provider)
        try:
            yield Pipeline(server, client, provider)
        finally:
            route_to(None)
            provider.shutdown()
            client.shutdown(5)


def _drain(pipeline: Pipeline, expected: int) -> list[dict[str, Any]]:
    assert pipeline.provider.force_flush(60_000)
    assert pipeline.client.flush(60)
    pipeline.server.wait_for_events(expected, timeout=30)
    stats = pipeline.client.stats()
    assert stats["dropped"] == {}, stats
    assert pipeline.server.event_count == len(pipeline.server.uuids)
    return pipeline.server.events


def _request_number(event: dict[str, Any]) -> int:
    """The request an event belongs to, from the URL (and ``expect``, when captured by hand)."""
    props = event["properties"]
    url = props.get("$request_path") or props.get("$current_url") or ""
    match = _NUMBER.search(url)
    assert match, f"no request number in {event['event']!r}: {props}"
    number = int(match[1])
    if "expect" in props:
        assert props["expect"] == number, (props["expect"], url)
    return number


def check_isolation(
    events: Iterable[dict[str, Any]], kinds: dict[str, Callable[[dict[str, Any]], bool]], count: int
) -> dict[str, int]:
    """Every event of every kind belongs wholly to its request; each kind once per request."""
    seen: dict[str, collections.Counter[int]] = {name: collections.Counter() for name in kinds}
    wrong: list[str] = []
    for event in events:
        kind = next((name for name, match in kinds.items() if match(event)), None)
        if kind is None:
            continue
        i = _request_number(event)
        seen[kind][i] += 1
        props = event["properties"]
        expected = {
            "distinct_id": f"user-{i}",
            "$session_id": f"sess-{i}",
            "req": i,
            "shard": i % 7,
            "handler_req": i,
        }
        got = {
            "distinct_id": event["distinct_id"],
            "$session_id": props.get("$session_id"),
            "req": props.get("req"),
            "shard": props.get("shard"),
            "handler_req": props.get("handler_req"),
        }
        extra_tags = (
            set(props.get("$context_tags", ()))
            - TAG_KEYS
            - {
                "$current_url",
                "$request_method",
                "$request_path",
                "$ip",
                "$user_agent",
                "$raw_user_agent",
            }
        )
        if got != expected or extra_tags:
            wrong.append(f"{kind} #{i}: {got} {sorted(extra_tags)}")
    assert not wrong, f"{len(wrong)} misattributed events, e.g. {wrong[:5]}"
    for name, counter in seen.items():
        assert set(counter) == set(range(count)), f"{name}: {count - len(counter)} missing"
        assert set(counter.values()) == {1}, f"{name}: some request has several"
    return {name: sum(counter.values()) for name, counter in seen.items()}


def _named(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event["event"] == name


def _span_event(route: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event["event"].startswith("GET ") and route in event["event"]


async def _gather(app: Any, paths: list[tuple[int, str]]) -> list[int]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:

        async def one(i: int, path: str) -> int:
            response = await http.get(path, headers=request_headers(i), timeout=120)
            return response.status_code

        return await asyncio.gather(*(one(i, path) for i, path in paths))


def _threads(url: Callable[[int], str], total_threads: int, per_thread: int) -> None:
    errors: list[str] = []

    def worker(n: int) -> None:
        with requests.Session() as session:
            for k in range(per_thread):
                i = n * per_thread + k
                response = session.get(url(i), headers=request_headers(i), timeout=60)
                if response.status_code != 200:
                    errors.append(f"{i}: {response.status_code}")

    pool = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(total_threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(120)
        assert not thread.is_alive()
    assert not errors, errors[:5]


# -- FastAPI, asyncio -----------------------------------------------------------------------


def test_fastapi_2000_concurrent_requests(pipeline: Pipeline) -> None:
    from fastapi import FastAPI
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from posthog_otel.instrumentors.asgi import instrument_app

    app = FastAPI()

    @app.get("/order/{i}")
    async def order(i: int) -> dict[str, Any]:
        await asyncio.sleep(random.random() * 0.003)
        handle(i)

        async def child() -> None:
            await asyncio.sleep(random.random() * 0.003)
            posthog.capture("child_task", properties={"expect": i})

        task = asyncio.create_task(child())
        await asyncio.sleep(0)
        posthog.capture("order_viewed", properties={"expect": i})
        await task
        return {"user": posthog.get_context_distinct_id()}

    instrument_app(app)
    FastAPIInstrumentor.instrument_app(app, tracer_provider=pipeline.provider)
    try:
        started = time.monotonic()
        statuses = asyncio.run(_gather(app, [(i, f"/order/{i}") for i in range(ASYNC_REQUESTS)]))
        seconds = time.monotonic() - started
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
    assert statuses == [200] * ASYNC_REQUESTS
    events = _drain(pipeline, 3 * ASYNC_REQUESTS)
    counts = check_isolation(
        events,
        {
            "order_viewed": _named("order_viewed"),
            "child_task": _named("child_task"),
            "server_span": _span_event("/order/"),
        },
        ASYNC_REQUESTS,
    )
    write_artifact(
        "isolation",
        {
            "fastapi_asyncio": {
                "requests": ASYNC_REQUESTS,
                "events": counts,
                "seconds": round(seconds, 2),
            }
        },
    )


# -- WSGI, threads --------------------------------------------------------------------------


def test_wsgi_64_threads(pipeline: Pipeline) -> None:
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    from posthog_otel.instrumentors.wsgi import PosthogWSGIMiddleware

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        i = int(environ["PATH_INFO"].rsplit("/", 1)[1])
        time.sleep(random.random() * 0.003)
        handle(i)

        def child() -> None:
            time.sleep(random.random() * 0.003)
            posthog.capture("child_thread", properties={"expect": i})

        thread = threading.Thread(target=child)  # the context follows (ThreadingInstrumentor)
        thread.start()
        posthog.capture("order_viewed", properties={"expect": i})
        thread.join()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wrapped = OpenTelemetryMiddleware(PosthogWSGIMiddleware(app), tracer_provider=pipeline.provider)
    instrumentor = ThreadingInstrumentor()
    instrumentor.instrument()
    try:
        with wsgi_server(wrapped) as url:
            _threads(lambda i: f"{url}/order/{i}", THREADS, PER_THREAD)
    finally:
        instrumentor.uninstrument()
    total = THREADS * PER_THREAD
    events = _drain(pipeline, 3 * total)
    counts = check_isolation(
        events,
        {
            "order_viewed": _named("order_viewed"),
            "child_thread": _named("child_thread"),
            "server_span": _span_event("GET"),
        },
        total,
    )
    write_artifact(
        "isolation", {"wsgi_threads": {"threads": THREADS, "requests": total, "events": counts}}
    )


# -- Django ---------------------------------------------------------------------------------


def _configure_django() -> None:
    import django
    from django.conf import settings

    if (
        not settings.configured
    ):  # the same site as tests/integration/test_django.py, whichever runs first
        from tests.support.apps.django_site import settings as site

        values = {name: getattr(site, name) for name in dir(site) if name.isupper()}
        db = os.path.join(tempfile.mkdtemp(prefix="posthog-otel-django-"), "db.sqlite3")
        values["DATABASES"] = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db}}
        settings.configure(**values)
        django.setup()
        from django.core.management import call_command

        call_command("migrate", run_syncdb=True, verbosity=0)


@pytest.fixture
def django_stack() -> Iterator[None]:
    pytest.importorskip("posthog_otel.instrumentors.django")
    _configure_django()
    from django.test import override_settings

    from posthog_otel.instrumentors.django import MIDDLEWARE_PATH

    stack = [
        "django.middleware.common.CommonMiddleware",
        MIDDLEWARE_PATH,
    ]
    with override_settings(MIDDLEWARE=stack, ROOT_URLCONF="tests.reliability.apps.django_urls"):
        yield


def test_django_asgi_concurrent_requests(pipeline: Pipeline, django_stack: None) -> None:
    from django.core.handlers.asgi import ASGIHandler

    app = ASGIHandler()
    statuses = asyncio.run(
        _gather(app, [(i, f"/aorder/{i}") for i in range(DJANGO_ASYNC_REQUESTS)])
    )
    assert statuses == [200] * DJANGO_ASYNC_REQUESTS
    events = _drain(pipeline, 2 * DJANGO_ASYNC_REQUESTS)
    counts = check_isolation(
        events,
        {"order_viewed": _named("order_viewed"), "child_task": _named("child_task")},
        DJANGO_ASYNC_REQUESTS,
    )
    write_artifact(
        "isolation", {"django_asgi": {"requests": DJANGO_ASYNC_REQUESTS, "events": counts}}
    )


def test_django_wsgi_64_threads(pipeline: Pipeline, django_stack: None) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    with wsgi_server(WSGIHandler()) as url:
        _threads(lambda i: f"{url}/order/{i}", THREADS, DJANGO_PER_THREAD)
    total = THREADS * DJANGO_PER_THREAD
    events = _drain(pipeline, 2 * total)
    counts = check_isolation(
        events,
        {"order_viewed": _named("order_viewed"), "child_thread": _named("child_thread")},
        total,
    )
    write_artifact(
        "isolation", {"django_wsgi": {"threads": THREADS, "requests": total, "events": counts}}
    )
