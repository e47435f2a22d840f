"""Per-request cost of PosthogPythonInstrumentor in a posthog-python Django app.

    python -m benchmarks.posthog_python

One Django WSGI handler with posthog-python's own ``PosthogContextMiddleware``; the view tags
and captures one event with posthog-python's client (delivered to a loopback capture server in
another process). Two variants, measured in interleaved rounds in one process: the middleware
alone, and the middleware with ``PosthogPythonInstrumentor`` instrumented (its context then
lives in the OpenTelemetry Context and its events get trace ids); the instrumentor is switched
on and off between rounds, outside the timed part, and the variants alternate in going first. Requests carry posthog-js tracing headers
and are driven in-process through the WSGI entry point (no sockets).
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
import types
from collections.abc import Callable
from typing import Any

from .core import capture_server_process
from .frameworks import _wsgi_driver

ROUNDS = 10
PER_ROUND = 200
REPEATS = 5


def _handler(url: str) -> tuple[Callable[[], float], Any]:
    import django
    import posthog
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import JsonResponse
    from django.urls import path

    posthog.api_key = "phc_bench"
    posthog.host = url
    client = posthog.setup()

    def item(request: Any) -> JsonResponse:
        posthog.tag("item", "hedgehog")
        posthog.capture("item_viewed")
        return JsonResponse({"ok": "yes"})

    urls = types.ModuleType("benchmarks_posthog_python_urls")
    urls.urlpatterns = [path("item", item)]  # type: ignore[attr-defined]
    sys.modules[urls.__name__] = urls
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=urls.__name__,
        MIDDLEWARE=["posthog.integrations.django.PosthogContextMiddleware"],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()
    return _wsgi_driver(WSGIHandler(), "/item"), client


def _measure(one: Callable[[], float]) -> dict[str, float]:
    from posthog_otel.instrumentors.posthog_python import PosthogPythonInstrumentor

    instrumentor = PosthogPythonInstrumentor()
    samples: dict[str, list[float]] = {"middleware": [], "middleware + instrumentor": []}
    for _ in range(100):  # warm up
        one()
    for round_ in range(ROUNDS):  # the order alternates, so neither variant always goes first
        for instrumented in (False, True) if round_ % 2 else (True, False):
            if instrumented:
                instrumentor.instrument(route_events=False)
            name = "middleware + instrumentor" if instrumented else "middleware"
            samples[name].extend(one() for _ in range(PER_ROUND))
            if instrumented:
                instrumentor.uninstrument()
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


def measure() -> str:
    logging.disable(logging.WARNING)
    with capture_server_process() as url:
        one, client = _handler(url)
        started = time.perf_counter()
        runs = [_measure(one) for _ in range(REPEATS)]
        elapsed = time.perf_counter() - started
        client.shutdown()
    base = statistics.median(r["middleware"] for r in runs)
    added = sorted(r["middleware + instrumentor"] - r["middleware"] for r in runs)
    median = statistics.median(added)
    return (
        f"Django + posthog-python's PosthogContextMiddleware: median request {base:.0f} us; "
        f"added by PosthogPythonInstrumentor {median:.1f} us ({median / base:.1%}; runs "
        f"{added[0]:.1f} to {added[-1]:.1f} us; {REPEATS} x {ROUNDS} x {PER_ROUND} requests "
        f"per variant in {elapsed:.0f} s)"
    )


def run() -> list[str]:
    line = measure()
    print(line)
    return [line]


if __name__ == "__main__":
    run()
