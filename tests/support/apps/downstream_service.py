"""A downstream service for the framework end-to-end tests, run as a real process.

    POSTHOG_API_KEY=phc_x POSTHOG_HOST=http://127.0.0.1:8010 PORT=9000 \\
        python -m tests.support.apps.downstream_service

A plain WSGI app behind contrib's ``OpenTelemetryMiddleware`` and ``PosthogWSGIMiddleware``,
with ``PosthogInstrumentor`` (propagator, span processor). ``/work`` captures ``downstream_work``; ``/fail`` tags and raises (a 500).
Both report the PostHog context they ran in.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import posthog_otel as posthog


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ["PATH_INFO"]
    if path == "/fail":
        posthog.tag("downstream_step", "fail")
        raise ValueError("downstream refused")
    if path == "/work":
        posthog.capture("downstream_work")
    body = json.dumps(
        {"distinct_id": posthog.get_context_distinct_id(), "tags": posthog.get_tags()}
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    from posthog_otel.instrumentors.wsgi import PosthogWSGIMiddleware

    posthog.PosthogInstrumentor().instrument(instrument_libraries=False)
    wrapped = OpenTelemetryMiddleware(PosthogWSGIMiddleware(app))
    server = make_server("127.0.0.1", int(os.environ["PORT"]), wrapped, handler_class=_Quiet)

    # SIGINT inside a request would be swallowed by wsgiref's error handling: stop cleanly.
    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
