"""A FastAPI app for the FastAPI end-to-end test, served by uvicorn under ``opentelemetry-instrument``.

``/checkout`` tags, calls the downstream service with ``requests`` (in the threadpool, as a sync
route), captures and raises.
"""

from __future__ import annotations

import os

import requests
import uvicorn
from fastapi import FastAPI

import posthog_otel as posthog

app = FastAPI()


@app.get("/checkout")
def checkout() -> str:
    posthog.tag("cart", "c-9")
    downstream = os.environ["DOWNSTREAM_URL"]
    session = requests.Session()
    session.trust_env = False
    work = session.get(downstream + "/work", timeout=10)
    failed = session.get(downstream + "/fail", timeout=10)
    posthog.capture(
        "checkout_started", properties={"downstream": [work.status_code, failed.status_code]}
    )
    raise LookupError("order not found")


@app.get("/health")
def health() -> str:
    return "ok"


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
