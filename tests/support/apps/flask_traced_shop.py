"""A Flask shop that other people's clients call: posthog-js from a browser page
(tests/integration/test_posthog_js_browser.py) and a Node.js service traced with the
OpenTelemetry SDK (tests/integration/test_peer_clients.py). The page loads posthog-js from this app (no CDN), sends its own
events to ``POSTHOG_HOST`` and calls the app's API with posthog-js's ``tracing_headers`` and
``trace_propagation_targets``; the app is instrumented with ``PosthogInstrumentor().instrument()``
and OpenTelemetry's Flask instrumentation (the SERVER span that continues the browser's
``traceparent``).

Environment: ``PORT``, ``POSTHOG_API_KEY``, ``POSTHOG_HOST`` (where the app sends),
``POSTHOG_JS_HOST`` (posthog-js's ``api_host``; default ``POSTHOG_HOST``), ``POSTHOG_JS_BUNDLE``
(posthog-js's ``dist/array.full.js``, for the page only).

    GET  /                    the page (posthog.init, identify, a capture, two API calls)
    GET  /assets/posthog.js   the posthog-js bundle
    GET|POST /api/checkout    captures ``checkout_started``; answers with the headers it got
    POST /api/fail            raises (an unhandled exception: ``$exception``)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from flask import Flask, Response, request
from opentelemetry.instrumentation.flask import FlaskInstrumentor

import posthog_otel as posthog
from posthog_otel import PosthogInstrumentor

PosthogInstrumentor().instrument()

app = Flask(__name__)
# contrib's instrument() swaps the flask.Flask class, which this module imported already
FlaskInstrumentor.instrument_app(app)

_SEEN_HEADERS = (
    "traceparent",
    "x-posthog-distinct-id",
    "x-posthog-session-id",
    "x-posthog-window-id",
)

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<script src="/assets/posthog.js"></script></head>
<body><h1>Shop</h1>
<script>
window.shopResults = {};
posthog.init(%(key)s, {
  api_host: %(host)s,
  tracing_headers: [location.hostname],
  trace_propagation_targets: [location.origin],
  request_batching: false,
  autocapture: false,
  disable_session_recording: true,
  disable_surveys: true,
  opt_out_useragent_filter: true,  // HeadlessChrome reads as a bot otherwise
  loaded: function (ph) {
    ph.identify("browser-user-1", {plan: "pro"});
    ph.capture("cart_viewed", {items: 2});
    var sent = {distinct_id: ph.get_distinct_id(), session_id: ph.get_session_id(),
                window_id: ph.sessionManager.checkAndGetSessionAndWindowId(true).windowId};
    fetch("/api/checkout", {method: "POST", body: "{}", headers: {"Content-Type": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (checkout) {
        var xhr = new XMLHttpRequest();
        xhr.open("POST", "/api/fail");
        xhr.onloadend = function () {
          window.shopResults = {sent: sent, checkout: checkout, fail_status: xhr.status,
                                fail_headers: xhr.getResponseHeader("X-Seen-Headers"),
                                done: true};
        };
        xhr.send("{}");
      });
  }
});
</script></body></html>
"""


def _seen() -> dict[str, str | None]:
    return {name: request.headers.get(name) for name in _SEEN_HEADERS}


@app.route("/")
def page() -> Response:
    values = {
        "key": json.dumps(os.environ["POSTHOG_API_KEY"]),
        "host": json.dumps(os.environ.get("POSTHOG_JS_HOST") or os.environ["POSTHOG_HOST"]),
    }
    return Response(_PAGE % values, mimetype="text/html")


@app.route("/assets/posthog.js")
def bundle() -> Response:
    body = Path(os.environ["POSTHOG_JS_BUNDLE"]).read_bytes()
    return Response(body, mimetype="text/javascript")


@app.route("/favicon.ico")
def favicon() -> Response:
    return Response(b"", status=204)


@app.route("/api/checkout", methods=["GET", "POST"])
def checkout() -> dict[str, object]:
    posthog.tag("cart", "c-9")
    posthog.capture("checkout_started", properties={"total": 42})
    return {"seen": _seen()}


@app.route("/api/fail", methods=["POST"])
def fail() -> str:
    posthog.tag("cart", "c-9")
    raise RuntimeError("card declined")


@app.after_request
def _expose_seen(response: Response) -> Response:
    response.headers["X-Seen-Headers"] = json.dumps(_seen())
    return response


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
