"""A small WSGI service for the propagation end-to-end tests, run as a real subprocess.

    OTEL_PROPAGATORS=tracecontext,baggage,posthog python tests/support/propagation_service.py

It listens on 127.0.0.1 (a free port, printed as ``PORT <n>``) behind contrib's WSGI
middleware, which extracts with the global propagators named by ``OTEL_PROPAGATORS`` (our
``posthog`` entry point among them). Routes:

- ``/report``: what this service sees: the PostHog scope, OpenTelemetry baggage, the headers.
- ``/call?to=URL[&as=HOST]``: the "service A" role. Inside a new context with :data:`TAGS`
  and an unrelated baggage member, call ``URL`` with ``requests`` (through
  ``PosthogRequestsInstrumentor``, plus contrib's ``RequestsInstrumentor`` when
  ``WITH_CONTRIB=1``); with ``as``, the URL's host is replaced by ``HOST``, which resolves
  to 127.0.0.1 inside this process only. Answers with its own report and the callee's answer.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any
from urllib.parse import parse_qs

TAGS: dict[str, Any] = {
    "plan": "pro",
    "spaces": "a b  c",
    "plus": "1+1=2",
    "percent": "100% sure %41",
    "semicolon": "a;b",
    "comma": "a,b",
    "equals": "k=v=w",
    "unicode": "héllo wörld ✓ 日本語 🚀",
    "quotes": 'say "hi"',
    "number_string": "42",
    "bool_string": "true",
    "empty": "",
    "int": 42,
    "negative": -7,
    "big": 2**70,
    "float": 3.25,
    "true": True,
    "false": False,
    "null": None,
    "list": [1, "two, three", None, True, 2.5],
    "dict": {"nested": {"k": "v w;x"}, "n": 1.5},
    "key with space": "v",
    "ключ": "значение",
}


def _report(environ: dict[str, Any]) -> dict[str, Any]:
    from opentelemetry import baggage
    from opentelemetry.propagate import get_global_textmap

    import posthog_otel

    scope = posthog_otel.current_scope()
    resolved = scope.resolve() if scope is not None else None
    textmap = get_global_textmap()
    return {
        "propagators": [type(p).__name__ for p in getattr(textmap, "_propagators", [textmap])],
        "scope": None
        if resolved is None
        else {
            "distinct_id": resolved.distinct_id,
            "session_id": resolved.session_id,
            "window_id": resolved.get("window_id"),
            "tags": resolved.tags,
            "fresh": scope.fresh if scope is not None else None,
        },
        "baggage": {k: str(v) for k, v in baggage.get_all().items()},
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
    }


def _call(environ: dict[str, Any]) -> dict[str, Any]:
    import requests
    from opentelemetry import baggage
    from opentelemetry import context as otel_context

    import posthog_otel
    from tests.support.http_echo import loopback_names

    query = parse_qs(environ.get("QUERY_STRING", ""))
    url = query["to"][0]
    alias = query.get("as", [None])[0]
    seen = _report(environ)
    with posthog_otel.new_context():
        for key, value in TAGS.items():
            posthog_otel.tag(key, value)
        token = otel_context.attach(baggage.set_baggage("other.member", "kept value"))
        try:
            session = requests.Session()
            session.trust_env = False
            if alias:
                url = url.replace("127.0.0.1", alias, 1)
                with loopback_names(alias):
                    answer = session.get(url, timeout=10).json()
            else:
                answer = session.get(url, timeout=10).json()
        finally:
            otel_context.detach(token)
    return {"seen": seen, "answer": answer}


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    try:
        result = _call(environ) if environ["PATH_INFO"] == "/call" else _report(environ)
        body, status = json.dumps(result).encode(), "200 OK"
    except Exception as exc:  # show the failure to the test
        body, status = json.dumps({"error": repr(exc)}).encode(), "500 Internal Server Error"
    start_response(status, [("Content-Type", "application/json")])
    return [body]


def main() -> None:
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from opentelemetry import trace
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider

    from posthog_otel.instrumentors.requests import PosthogRequestsInstrumentor

    trace.set_tracer_provider(TracerProvider())  # real, sampled spans: traceparent flows
    PosthogRequestsInstrumentor().instrument()
    if os.environ.get("WITH_CONTRIB") == "1":
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        RequestsInstrumentor().instrument()

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, OpenTelemetryMiddleware(app), handler_class=Quiet)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
