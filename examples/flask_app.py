"""A Flask app instrumented with posthog-otel, sending to the local sink.

Needs: ``pip install ./posthog-otel flask``. Then, from the clone:

    posthog-otel sink &                                   # viewer at http://127.0.0.1:8010/
    POSTHOG_API_KEY=phc_local POSTHOG_HOST=http://127.0.0.1:8010 python examples/flask_app.py
    curl -H 'X-POSTHOG-DISTINCT-ID: user-1' -H 'X-POSTHOG-SESSION-ID: s-1' localhost:8000/checkout
    curl -H 'X-POSTHOG-DISTINCT-ID: user-1' localhost:8000/fail

``PosthogInstrumentor().instrument()`` sets up the tracer provider, the propagator, exception
capture, and (through ``PosthogFlaskInstrumentor``) a PostHog context for every Flask app
created afterwards. ``instrument_app(app)`` from ``posthog_otel.instrumentors.flask`` does the same for one
app. ``opentelemetry-instrument python examples/flask_app.py`` works too (then drop the call).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from flask import Flask, Response

import posthog_otel as posthog
from posthog_otel import PosthogInstrumentor, capture_span

PosthogInstrumentor().instrument()

app = Flask(__name__)


@app.route("/checkout")
def checkout() -> dict[str, str]:
    posthog.tag("plan", "pro")  # on every event of this request
    with capture_span("payment_authorized", provider="demo-bank"):
        pass
    posthog.capture("order_completed")
    return {"status": "paid", "user": str(posthog.get_context_distinct_id())}


@app.route("/receipt")
def receipt() -> Response:
    def lines() -> Iterator[str]:  # a streaming body keeps the request's context
        posthog.capture("receipt_streamed")
        yield "thank you\n"

    return Response(lines(), mimetype="text/plain")


@app.route("/fail")
def fail() -> str:
    raise RuntimeError("captured once as $exception, with the request's person and session")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
