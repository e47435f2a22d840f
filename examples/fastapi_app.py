"""A FastAPI app instrumented with posthog-otel, sending to the local sink.

Needs: ``pip install ./posthog-otel fastapi uvicorn``. Then, from the clone:

    posthog-otel sink &                                   # viewer at http://127.0.0.1:8010/
    POSTHOG_API_KEY=phc_local POSTHOG_HOST=http://127.0.0.1:8010 \\
        python -m uvicorn examples.fastapi_app:app --port 8000
    curl -H 'X-POSTHOG-DISTINCT-ID: user-1' -H 'X-POSTHOG-SESSION-ID: s-1' localhost:8000/checkout

``PosthogInstrumentor().instrument()`` sets up the tracer provider, the propagator, exception
capture, and the middleware for every FastAPI app created afterwards.
"""

from __future__ import annotations

from fastapi import BackgroundTasks, FastAPI

import posthog_otel as posthog
from posthog_otel import PosthogInstrumentor, capture_span

PosthogInstrumentor().instrument()

app = FastAPI()


@app.get("/checkout")
async def checkout(tasks: BackgroundTasks) -> dict[str, str]:
    posthog.tag("plan", "pro")
    with capture_span("payment_authorized", provider="demo-bank"):
        pass
    tasks.add_task(lambda: posthog.capture("receipt_sent"))  # runs with the request's context
    return {"status": "paid"}


@app.get("/fail")
async def fail() -> None:
    raise RuntimeError("captured once as $exception, with the request's person and session")
