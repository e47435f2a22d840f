"""A Flask app whose spans go to PostHog's ``/i/v1/traces``, run under ``opentelemetry-instrument``
with ``POSTHOG_OTEL_TRACES=true`` by tests/integration/test_traces_flask.py.

``GET /order`` captures ``order_placed``, prices the order in a ``posthog_otel.start_span``
span, queries SQLite (contrib's sqlite3 instrumentation) and calls ``/stock`` of this same app
with ``requests`` (contrib's requests instrumentation: a CLIENT span, and a second SERVER span
continuing the trace). Environment: ``PORT``, ``POSTHOG_API_KEY``, ``POSTHOG_HOST``.
"""

from __future__ import annotations

import os
import sqlite3

import requests
from flask import Flask

import posthog_otel as posthog

app = Flask(__name__)
PORT = int(os.environ["PORT"])


@app.route("/order")
def order() -> dict[str, object]:
    posthog.capture("order_placed", properties={"total": 42})
    with posthog.start_span("price order", attributes={"items": 2}) as span:
        connection = sqlite3.connect(":memory:")
        cursor = connection.cursor()  # contrib traces cursor calls
        cursor.execute("create table prices (sku text, cents integer)")
        cursor.execute("insert into prices values ('tea', 420)")
        cursor.execute("select sum(cents) from prices")
        (cents,) = cursor.fetchone()
        connection.close()
        span.set_attribute("cents", cents)
    stock = requests.get(f"http://127.0.0.1:{PORT}/stock", timeout=10).json()
    return {"cents": cents, "stock": stock}


@app.route("/stock")
def stock() -> dict[str, object]:
    return {"tea": 3, "distinct_id": posthog.get_context_distinct_id()}


@app.route("/health")
def health() -> str:
    return "ok"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=PORT)
