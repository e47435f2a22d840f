"""A Flask app for the Flask end-to-end test, run under ``opentelemetry-instrument``.

``/checkout`` tags, calls the downstream service with ``requests``, captures and raises;
``/stream`` streams chunks captured in the request's context.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import requests
from flask import Flask, Response

import posthog_otel as posthog

app = Flask(__name__)


@app.route("/checkout")
def checkout() -> str:
    posthog.tag("cart", "c-7")
    downstream = os.environ["DOWNSTREAM_URL"]
    session = requests.Session()
    session.trust_env = False
    work = session.get(downstream + "/work", timeout=10)
    failed = session.get(downstream + "/fail", timeout=10)
    posthog.capture(
        "checkout_started", properties={"downstream": [work.status_code, failed.status_code]}
    )
    raise RuntimeError("payment failed")


@app.route("/stream")
def stream() -> Response:
    def chunks() -> Iterator[str]:
        for i in range(2):
            posthog.capture("chunk_sent", properties={"i": i})
            yield f"{i}:{posthog.get_context_distinct_id()}\n"

    return Response(chunks(), mimetype="text/plain")


@app.route("/health")
def health() -> str:
    return "ok"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
