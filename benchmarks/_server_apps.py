"""The apps ``benchmarks.servers`` serves: one route, five variants, chosen by environment.

    BENCH_VARIANT=ours BENCH_CAPTURE_URL=http://127.0.0.1:PORT \\
        gunicorn -k sync -w 1 'benchmarks._server_apps:flask_app()'
    BENCH_VARIANT=peer uvicorn --factory benchmarks._server_apps:fastapi_app

Variants: ``bare`` (the framework alone), ``contrib`` (+ contrib's instrumentation with an SDK
provider exporting to a no-op exporter), ``ours`` (contrib + ``PosthogInstrumentor().instrument()``,
as a user sets it up: two events per identified request, the captured one and the root span's),
``ours_1ev`` (the same with ``capture_spans="none"``: one event per request, as posthog-python
sends), ``peer`` (posthog-python's middleware, no contrib), ``contrib_peer``
(contrib + posthog-python's middleware). The route tags the request and captures one event
with the variant's client; ``bare`` and ``contrib`` do neither.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

VARIANTS = ("bare", "contrib", "ours", "ours_1ev", "peer", "contrib_peer")
_OURS = ("ours", "ours_1ev")
_CONTRIB = ("contrib", *_OURS, "contrib_peer")


class _NoExport:
    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _variant() -> tuple[str, str]:
    variant = os.environ.get("BENCH_VARIANT", "bare")
    if variant not in VARIANTS:
        raise ValueError(f"BENCH_VARIANT must be one of {VARIANTS}")
    return variant, os.environ.get("BENCH_CAPTURE_URL", "http://127.0.0.1:9")


def _tracing() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_NoExport()))  # type: ignore[arg-type]
    trace.set_tracer_provider(provider)


def _ours(url: str, variant: str) -> tuple[Callable[[str], Any], Callable[[str, Any], None]]:
    from posthog_otel.instrumentor import PosthogInstrumentor

    capture_spans = "none" if variant == "ours_1ev" else None  # None: the default, "roots"
    PosthogInstrumentor().instrument(api_key="phc_bench", host=url, capture_spans=capture_spans)
    import posthog_otel

    return posthog_otel.capture, posthog_otel.tag


def _peer(url: str) -> tuple[Any, Callable[[str], Any], Callable[[str, Any], None]]:
    import posthog

    client = posthog.Posthog("phc_bench", host=url)
    return client, lambda event: client.capture(event), posthog.tag


def flask_app() -> Any:
    variant, url = _variant()
    capture: Callable[[str], Any] = lambda event: None  # noqa: E731
    tag: Callable[[str, Any], None] = lambda key, value: None  # noqa: E731
    peer = None
    if variant in _CONTRIB:
        _tracing()
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor().instrument()
    if variant in _OURS:
        capture, tag = _ours(url, variant)
    elif variant in ("peer", "contrib_peer"):
        peer, capture, tag = _peer(url)
    from flask import Flask

    app = Flask("bench")

    @app.get("/item")
    def item() -> dict[str, str]:
        tag("item", "hedgehog")
        capture("item_viewed")
        return {"ok": "yes"}

    if peer is not None:
        from posthog.integrations.flask import PosthogFlaskIntegration

        PosthogFlaskIntegration(app, client=peer)
    return app


def fastapi_app() -> Any:
    variant, url = _variant()
    capture: Callable[[str], Any] = lambda event: None  # noqa: E731
    tag: Callable[[str, Any], None] = lambda key, value: None  # noqa: E731
    peer = None
    if variant in _CONTRIB:
        _tracing()
    if variant in _OURS:
        capture, tag = _ours(url, variant)
    elif variant in ("peer", "contrib_peer"):
        peer, capture, tag = _peer(url)
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/item")
    async def item() -> dict[str, str]:
        tag("item", "hedgehog")
        capture("item_viewed")
        return {"ok": "yes"}

    if variant in _CONTRIB:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app)
    if peer is not None:
        from posthog.integrations.asgi import PosthogASGIMiddleware

        app.add_middleware(PosthogASGIMiddleware, client=peer)
    return app
