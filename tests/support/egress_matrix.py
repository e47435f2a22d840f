"""The outbound identity matrix: every HTTP client path, against real loopback servers.

Run as a program, in a fresh process (the propagators come from ``OTEL_PROPAGATORS``, read
at import)::

    OTEL_PROPAGATORS=tracecontext,baggage,posthog python -m tests.support.egress_matrix \
        --tracer sampled --contrib

prints one JSON object per case: path (requests, httpx, httpx_async, urllib3, urllib,
aiohttp), ours (our instrumentors on/off), destination (``billing``: an internal name, a
propagation target; ``api.example.com``: a third party) and what the server received. Both
names resolve to 127.0.0.1 inside the process only (:func:`loopback_names`).

``--tracer``: ``sampled`` (an SDK provider, always on), ``unsampled``
(``ParentBased(TraceIdRatioBased(0))``) or ``none`` (no provider installed).
``--contrib``: contrib's instrumentation of every client is on too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.request
from collections.abc import Callable
from typing import Any

TARGET = "billing"
THIRD_PARTY = "api.example.com"
PATHS = ("requests", "httpx", "httpx_async", "urllib3", "urllib", "aiohttp")
TRACERS = ("sampled", "unsampled", "none")


def _send(path: str, url: str) -> None:
    if path == "requests":
        import requests

        session = requests.Session()
        session.trust_env = False
        session.get(url, timeout=10).raise_for_status()
    elif path == "httpx":
        import httpx

        with httpx.Client(trust_env=False) as client:
            client.get(url, timeout=10).raise_for_status()
    elif path == "httpx_async":
        import httpx

        async def call_httpx() -> None:
            async with httpx.AsyncClient(trust_env=False) as client:
                (await client.get(url, timeout=10)).raise_for_status()

        asyncio.run(call_httpx())
    elif path == "urllib3":
        import urllib3

        with urllib3.PoolManager() as manager:
            assert manager.request("GET", url, timeout=10).status == 200
    elif path == "urllib":
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=10) as answer:
            assert answer.status == 200
    else:
        import aiohttp

        async def call_aiohttp() -> None:
            async with (
                aiohttp.ClientSession(trust_env=False) as session,
                session.get(url) as answer,
            ):
                assert answer.status == 200

        asyncio.run(call_aiohttp())


def _in_scope(fn: Callable[[], None]) -> None:
    from opentelemetry import baggage
    from opentelemetry import context as otel_context

    import posthog_otel as ph

    ctx = baggage.set_baggage("other", "x")
    ctx = baggage.set_baggage("posthog.distinct_id", "from-baggage", ctx)
    token = otel_context.attach(ctx)
    try:
        with ph.new_context():
            ph.identify_context("user-1")
            ph.set_context_session("session-1")
            ph.tag("plan", "pro")
            fn()
    finally:
        otel_context.detach(token)


_OURS = (
    ("requests", "PosthogRequestsInstrumentor"),
    ("httpx", "PosthogHttpxInstrumentor"),
    ("urllib3", "PosthogUrllib3Instrumentor"),
    ("urllib", "PosthogUrllibInstrumentor"),
    ("aiohttp_client", "PosthogAiohttpClientInstrumentor"),
)
_CONTRIB = (
    ("requests", "RequestsInstrumentor"),
    ("httpx", "HTTPXClientInstrumentor"),
    ("urllib3", "URLLib3Instrumentor"),
    ("urllib", "URLLibInstrumentor"),
    ("aiohttp_client", "AioHttpClientInstrumentor"),
)


def _instrumentors(contrib: bool) -> tuple[list[Any], list[Any]]:
    """Ours (those this version ships) and, when asked, contrib's for every client."""
    import importlib

    ours: list[Any] = []
    for module, name in _OURS:
        try:
            found = importlib.import_module(f"posthog_otel.instrumentors.{module}")
        except ImportError:  # an older version without it: measured as "ours off" there
            continue
        ours.append(getattr(found, name)())
    theirs: list[Any] = []
    if contrib:
        for module, name in _CONTRIB:
            found = importlib.import_module(f"opentelemetry.instrumentation.{module}")
            theirs.append(getattr(found, name)())
    return ours, theirs


def _tracer(mode: str) -> None:
    if mode == "none":
        return
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    sampler = ALWAYS_ON if mode == "sampled" else ParentBased(TraceIdRatioBased(0.0))
    trace.set_tracer_provider(TracerProvider(sampler=sampler))


def run(tracer: str, contrib: bool) -> list[dict[str, Any]]:
    """Every (ours on/off, path, destination) case of one process setting."""
    from tests.support.http_echo import EchoServer, loopback_names

    _tracer(tracer)
    ours, theirs = _instrumentors(contrib)
    for instrumentor in theirs:
        instrumentor.instrument()
    results: list[dict[str, Any]] = []
    with EchoServer() as echo, loopback_names(TARGET, THIRD_PARTY):
        for ours_on in (True, False):
            for instrumentor in ours:
                if ours_on:
                    instrumentor.instrument()
                else:
                    instrumentor.uninstrument()
            for path in PATHS:
                for host in (TARGET, THIRD_PARTY):
                    _in_scope(lambda: _send(path, echo.url(host)))  # noqa: B023
                    results.append(
                        {
                            "tracer": tracer,
                            "contrib": contrib,
                            "ours": ours_on,
                            "path": path,
                            "destination": host,
                            "headers": echo.last(),
                        }
                    )
    return results


def posthog_members(headers: dict[str, list[str]]) -> list[str]:
    """The ``posthog.*`` baggage member names among ``headers`` (as received)."""
    members = ",".join(headers.get("baggage", [])).split(",")
    return [m.split("=", 1)[0].strip() for m in members if m.strip().startswith("posthog.")]


def leaked(headers: dict[str, list[str]]) -> list[str]:
    """Every PostHog header or member in ``headers``."""
    return posthog_members(headers) + [n for n in headers if n.lower().startswith("x-posthog")]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracer", choices=TRACERS, required=True)
    parser.add_argument("--contrib", action="store_true")
    args = parser.parse_args(argv)
    for result in run(args.tracer, args.contrib):
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
