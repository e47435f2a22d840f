"""A FastAPI app for one ``uvicorn`` process whose events wait in queues until shutdown.

    uvicorn tests.reliability.apps.fastapi_shutdown_app:app

``PosthogInstrumentor`` with ``flush_interval=60``: nothing is sent on its own while the test
runs, so what arrives was delivered at shutdown. ``GET /order`` identifies the request's context
and, inside a ``capture_span`` (a span that becomes an event), captures one event; it
answers that event's uuid.
Needs ``POSTHOG_API_KEY`` and ``POSTHOG_HOST``. No explicit flush or shutdown.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel
from posthog_otel.instrumentor import PosthogInstrumentor

trace.set_tracer_provider(TracerProvider())
PosthogInstrumentor().instrument(flush_interval=60, shutdown_timeout=5)

app = FastAPI()


@app.get("/order")
async def order(visitor: str) -> dict[str, object]:
    posthog_otel.identify_context(visitor)
    with posthog_otel.capture_span("checkout"):  # a span that becomes an event
        uuid = posthog_otel.capture("order_placed", properties={"pid": os.getpid()})
    return {"uuid": uuid, "pid": os.getpid()}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
