"""A Python gateway (Flask, ``PosthogInstrumentor``) that a browser calls with PostHog's headers
and that calls services written in other languages (tests/integration/test_polyglot_services.py).

The browser's ``X-POSTHOG-DISTINCT-ID`` / ``X-POSTHOG-SESSION-ID`` headers and ``posthog.tag.*``
baggage become the request's PostHog context; the gateway adds the tag ``gateway=python`` and
calls the service with ``requests`` (contrib's instrumentation: a CLIENT span and
``traceparent``), whose PostHog instrumentor sends the person, session and
tags on as ``posthog.*`` W3C baggage (loopback is a propagation target by default). The gateway's
own events go straight to ``POSTHOG_HOST`` as usual.

Environment: ``PORT``, ``POSTHOG_API_KEY``, ``POSTHOG_HOST``.

    GET /call?to=<url>   calls <url> (a service on 127.0.0.1); answers {"status": ..., "body": ...}
                         (status 0 when the service closed the connection without answering)
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import requests
from flask import Flask, request
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor

import posthog_otel as posthog
from posthog_otel import PosthogInstrumentor

PosthogInstrumentor().instrument()
RequestsInstrumentor().instrument()  # CLIENT spans; their traceparent continues the trace

app = Flask(__name__)
FlaskInstrumentor.instrument_app(app)


@app.route("/call")
def call() -> dict[str, object]:
    posthog.tag("gateway", "python")
    target = request.args["to"]
    if urlsplit(target).hostname != "127.0.0.1":
        return {"status": 400, "body": "loopback only"}
    try:
        response = requests.get(target, timeout=10)
    except requests.ConnectionError as exc:  # the JDK's server hangs up when a handler throws
        return {"status": 0, "body": type(exc).__name__}
    return {"status": response.status_code, "body": response.text}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
