"""Request latency of minimal apps: contrib alone, + posthog-otel, + posthog-python's middleware.

    python -m benchmarks.frameworks

For FastAPI (ASGI), Flask and Django (WSGI), the same one-route app in three variants, each
driven in-process through its ASGI/WSGI entry point (no sockets, so the figures are the
framework + instrumentation cost only):

* contrib: contrib's OpenTelemetry instrumentation with a BatchSpanProcessor to a no-op exporter;
* + posthog-otel: that, plus PosthogSpanProcessor, the PostHog propagator and our middleware;
* + posthog-python: contrib plus posthog-python's own middleware for that framework.

Requests carry posthog-js tracing headers; the handler tags and captures one event. Both
clients deliver to a loopback capture server in another process. Target: our added median
latency <= posthog-python's middleware's added latency.

Process-wide settings are switched to each variant's before its requests (outside the timed
part): the global propagator (contrib's middleware extracts with it, so only the posthog-otel
variant pays for the PostHog propagator) and, for Django, contrib's middleware tracer and the
settings the handler is built from.
"""

from __future__ import annotations

import asyncio
import io
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from .core import capture_server_process

HEADERS = {
    "x-posthog-distinct-id": "bench-user",
    "x-posthog-session-id": "bench-session",
    "user-agent": "bench/1.0",
}
ROUNDS = 10
PER_ROUND = 200
REPEATS = 5  # whole measurements per framework; medians of their results are reported


class _NoOpExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_NoOpExporter()))
    return provider


def _our_processor(provider: TracerProvider, url: str) -> Any:
    import posthog_otel
    from posthog_otel.spans.processor import PosthogSpanProcessor

    client = posthog_otel.setup(api_key="phc_bench", host=url)
    provider.add_span_processor(PosthogSpanProcessor(client))
    return client


def _propagators() -> tuple[Any, Any]:
    """(the stock global propagator, the stock one + PostHog's): contrib extracts with it."""
    from opentelemetry import propagate
    from opentelemetry.propagators.composite import CompositePropagator

    from posthog_otel.propagation.propagator import PosthogPropagator

    stock = propagate.get_global_textmap()
    return stock, CompositePropagator([stock, PosthogPropagator()])


def _variants(
    contrib: Callable[[], float],
    ours: Callable[[], float],
    peer: Callable[[], float],
    setups: tuple[Callable[[], None], ...] | None = None,
) -> dict[str, Callable[[], float]]:
    """The three drivers, each run after its process-wide settings are put in place (not
    timed): only the posthog-otel variant has the PostHog propagator; ``setups`` (one per
    variant, in order) add what else a framework keeps process-wide."""
    from opentelemetry import propagate

    stock, with_posthog = _propagators()
    named = (
        ("contrib", contrib, stock),
        ("posthog-otel", ours, with_posthog),
        ("posthog-python", peer, stock),
    )

    def prepared(
        drive: Callable[[], float], propagator: Any, setup: Callable[[], None] | None
    ) -> Callable[[], float]:
        def one() -> float:
            propagate.set_global_textmap(propagator)
            if setup is not None:
                setup()
            return drive()

        return one

    return {
        name: prepared(drive, propagator, setups[i] if setups else None)
        for i, (name, drive, propagator) in enumerate(named)
    }


def _peer_client(url: str) -> Any:
    import posthog

    posthog.api_key = "phc_bench"
    posthog.host = url
    return posthog.Posthog("phc_bench", host=url)


# -- drivers ------------------------------------------------------------------------------


def _wsgi_driver(app: Callable[..., Any], path: str) -> Callable[[], float]:
    environ_base = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "HTTP_HOST": "127.0.0.1:8000",
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in HEADERS.items()},
    }

    def one() -> float:
        environ = dict(environ_base, **{"wsgi.input": io.BytesIO()})
        started = time.perf_counter()
        body = app(environ, lambda status, headers, exc_info=None: None)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
        return time.perf_counter() - started

    return one


def _asgi_driver(app: Any, path: str) -> Callable[[], float]:
    loop = asyncio.new_event_loop()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in HEADERS.items()]
        + [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def call() -> float:
        started = time.perf_counter()
        await app(dict(scope), receive, send)
        return time.perf_counter() - started

    return lambda: loop.run_until_complete(call())


# -- apps ---------------------------------------------------------------------------------


def fastapi_variants(url: str) -> dict[str, Callable[[], float]]:
    from fastapi import FastAPI
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from posthog.integrations.asgi import PosthogASGIMiddleware as PeerMiddleware

    import posthog_otel
    from posthog_otel.instrumentors.asgi import instrument_app

    def build(capture: Callable[[str], Any], tag: Callable[[str, Any], None]) -> FastAPI:
        app = FastAPI()

        @app.get("/item")
        async def item() -> dict[str, str]:
            tag("item", "hedgehog")
            capture("item_viewed")
            return {"ok": "yes"}

        return app

    import posthog

    contrib_app = build(lambda e: None, lambda k, v: None)
    FastAPIInstrumentor.instrument_app(contrib_app, tracer_provider=_provider())

    ours_provider = _provider()
    _our_processor(ours_provider, url)
    ours_app = build(posthog_otel.capture, posthog_otel.tag)
    FastAPIInstrumentor.instrument_app(ours_app, tracer_provider=ours_provider)
    instrument_app(ours_app)

    peer_client = _peer_client(url)
    peer_app = build(lambda e: peer_client.capture(e), posthog.tag)
    FastAPIInstrumentor.instrument_app(peer_app, tracer_provider=_provider())
    peer_app.add_middleware(PeerMiddleware, client=peer_client)

    _CLEANUPS.append(peer_client.shutdown)
    return _variants(
        _asgi_driver(contrib_app, "/item"),
        _asgi_driver(ours_app, "/item"),
        _asgi_driver(peer_app, "/item"),
    )


def flask_variants(url: str) -> dict[str, Callable[[], float]]:
    import posthog
    from flask import Flask
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from posthog.integrations.flask import PosthogFlaskIntegration

    import posthog_otel
    from posthog_otel.instrumentors.flask import instrument_app

    def build(name: str, capture: Callable[[str], Any], tag: Callable[[str, Any], None]) -> Flask:
        app = Flask(name)

        @app.get("/item")
        def item() -> dict[str, str]:
            tag("item", "hedgehog")
            capture("item_viewed")
            return {"ok": "yes"}

        return app

    contrib_app = build("contrib", lambda e: None, lambda k, v: None)
    FlaskInstrumentor().instrument_app(contrib_app, tracer_provider=_provider())

    ours_provider = _provider()
    _our_processor(ours_provider, url)
    ours_app = build("ours", posthog_otel.capture, posthog_otel.tag)
    FlaskInstrumentor().instrument_app(ours_app, tracer_provider=ours_provider)
    instrument_app(ours_app)

    peer_client = _peer_client(url)
    peer_app = build("peer", lambda e: peer_client.capture(e), posthog.tag)
    FlaskInstrumentor().instrument_app(peer_app, tracer_provider=_provider())
    PosthogFlaskIntegration(peer_app, client=peer_client)

    _CLEANUPS.append(peer_client.shutdown)
    return _variants(
        _wsgi_driver(contrib_app, "/item"),
        _wsgi_driver(ours_app, "/item"),
        _wsgi_driver(peer_app, "/item"),
    )


def django_variants(url: str) -> dict[str, Callable[[], float]]:
    """Three WSGI handlers in one process: each builds its middleware chain from the settings
    current when it is created; contrib's middleware takes its tracer from a class attribute,
    switched per variant."""
    import sys
    import types

    import django
    import posthog
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import JsonResponse
    from django.urls import path
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware

    import posthog_otel

    peer_client = _peer_client(url)

    def view(capture: Callable[[str], Any], tag: Callable[[str, Any], None]) -> Any:
        def item(request: Any) -> JsonResponse:
            tag("item", "hedgehog")
            capture("item_viewed")
            return JsonResponse({"ok": "yes"})

        return item

    urls = types.ModuleType("benchmarks_django_urls")
    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("contrib/item", view(lambda e: None, lambda k, v: None)),
        path("ours/item", view(posthog_otel.capture, posthog_otel.tag)),
        path("peer/item", view(lambda e: peer_client.capture(e), posthog.tag)),
    ]
    sys.modules[urls.__name__] = urls
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="benchmark-only",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF=urls.__name__,
            MIDDLEWARE=[],
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()

    contrib_provider, ours_provider, peer_provider = _provider(), _provider(), _provider()
    _our_processor(ours_provider, url)
    DjangoInstrumentor().instrument(tracer_provider=contrib_provider)  # adds its middleware
    _CLEANUPS.append(DjangoInstrumentor().uninstrument)
    contrib_chain = list(settings.MIDDLEWARE)

    def handler(*ours: str) -> WSGIHandler:
        settings.MIDDLEWARE = [*contrib_chain, *ours]
        return WSGIHandler()

    def tracer_of(provider: TracerProvider) -> Callable[[], None]:
        tracer = provider.get_tracer("opentelemetry.instrumentation.django")

        def use() -> None:
            _DjangoMiddleware._tracer = tracer

        return use

    contrib_app = handler()
    ours_app = handler("posthog_otel.instrumentors.django.PosthogContextMiddleware")
    peer_app = handler("posthog.integrations.django.PosthogContextMiddleware")
    _CLEANUPS.append(peer_client.shutdown)
    return _variants(
        _wsgi_driver(contrib_app, "/contrib/item"),
        _wsgi_driver(ours_app, "/ours/item"),
        _wsgi_driver(peer_app, "/peer/item"),
        setups=(tracer_of(contrib_provider), tracer_of(ours_provider), tracer_of(peer_provider)),
    )


_CLEANUPS: list[Callable[[], Any]] = []
FRAMEWORKS: dict[str, Callable[[str], dict[str, Callable[[], float]]]] = {
    "FastAPI": fastapi_variants,
    "Flask": flask_variants,
    "Django": django_variants,
}


def _measure(variants: dict[str, Callable[[], float]]) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():
        for _ in range(100):  # warm up
            fn()
    for _ in range(ROUNDS):
        for name, fn in variants.items():
            samples[name].extend(fn() for _ in range(PER_ROUND))
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


def _dropped_spans() -> int:
    from posthog_otel.delivery.queue import live_queues

    spans = [queue for queue in live_queues() if queue.name == "posthog-otel-spans"]
    return sum(queue.counts().dropped for queue in spans)


def measure(name: str) -> str:
    """REPEATS measurements of one framework; the medians of the added latencies compared."""
    logging.disable(logging.WARNING)
    with capture_server_process() as url:
        variants = FRAMEWORKS[name](url)
        runs = [_measure(variants) for _ in range(REPEATS)]
        import posthog_otel

        posthog_otel.shutdown(5)
        while _CLEANUPS:
            _CLEANUPS.pop()()
    base = statistics.median(r["contrib"] for r in runs)
    ours_runs = sorted(r["posthog-otel"] - r["contrib"] for r in runs)
    peer_runs = sorted(r["posthog-python"] - r["contrib"] for r in runs)
    ours, peer = statistics.median(ours_runs), statistics.median(peer_runs)
    verdict = "meets" if ours <= peer else "MISSES"
    return (
        f"{name}: median request contrib {base:.0f} us; added by posthog-otel {ours:.0f} us "
        f"(runs {ours_runs[0]:.0f}-{ours_runs[-1]:.0f}), by posthog-python's middleware "
        f"{peer:.0f} us (runs {peer_runs[0]:.0f}-{peer_runs[-1]:.0f}); ratio ours/peer "
        f"{ours / peer:.2f}x (target <= 1: {verdict}); spans dropped by our queue: "
        f"{_dropped_spans()}"
    )


def run() -> list[str]:
    """Each framework in its own process: no threads, settings or garbage left by another."""
    lines = []
    for name in FRAMEWORKS:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                f"from benchmarks.frameworks import measure\nprint(measure({name!r}))",
            ],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{name} benchmark failed:\n{done.stderr[-3000:]}")
        lines.append(done.stdout.strip().splitlines()[-1])
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
