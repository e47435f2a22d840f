"""End to end: ``opentelemetry-instrument`` + a real Flask app + contrib flask/requests."""

from __future__ import annotations

import json
from typing import Any

import requests

from posthog_otel.testing.capture_server import CaptureServer
from tests.support.procs import BIN, free_port, start, stop, wait_until_up


def _console_spans(stdout: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while (start_at := stdout.find("{", index)) >= 0:
        try:
            obj, index = decoder.raw_decode(stdout, start_at)
        except ValueError:
            index = start_at + 1
            continue
        if isinstance(obj, dict) and "context" in obj:
            spans.append(obj)
    return spans


def _run_app(
    server: CaptureServer, extra_env: dict[str, str] | None = None
) -> tuple[str, str, int]:
    port = free_port()
    env = {
        "PORT": str(port),
        "POSTHOG_API_KEY": "phc_e2e",
        "POSTHOG_HOST": server.url,
        "OTEL_SERVICE_NAME": "flask-checkout",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        **(extra_env or {}),
    }
    proc = start(
        [
            str(BIN / "opentelemetry-instrument"),
            str(BIN / "python"),
            "tests/support/apps/flask_checkout.py",
        ],
        env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/health", proc)
        response = requests.get(
            base + "/checkout",
            headers={
                "X-POSTHOG-DISTINCT-ID": "browser-user",
                "X-POSTHOG-SESSION-ID": "browser-session",
            },
            timeout=10,
        )
        status = response.status_code
    finally:
        out, err = stop(proc)
    return out, err, status


def test_opentelemetry_instrument_flask_app_end_to_end(capture_server: CaptureServer) -> None:
    out, err, status = _run_app(capture_server)
    assert status == 500, err
    spans = _console_spans(out)
    (server_span,) = [
        s for s in spans if s["kind"] == "SpanKind.SERVER" and s["name"].endswith("/checkout")
    ]
    trace_id = server_span["context"]["trace_id"].removeprefix("0x")
    assert server_span["attributes"]["posthog.distinct_id"] == "browser-user"

    exceptions = capture_server.named("$exception")
    assert len(exceptions) == 1, err
    (exc_event,) = exceptions
    props = exc_event["properties"]
    assert exc_event["distinct_id"] == "browser-user"
    assert props["$session_id"] == "browser-session"
    assert props["$trace_id"] == trace_id
    assert props["cart"] == "c-1"
    (entry,) = props["$exception_list"]
    assert entry["type"] == "RuntimeError"
    functions = [frame["function"] for frame in entry["stacktrace"]["frames"]]
    assert functions[-2:] == ["checkout", "charge"]
    assert entry["stacktrace"]["frames"][-1]["in_app"] is True

    roots = [e for e in capture_server.events if e["event"] == server_span["name"]]
    assert len(roots) == 1
    root = roots[0]
    assert root["distinct_id"] == "browser-user"
    assert root["properties"]["$trace_id"] == trace_id
    assert root["properties"]["http_status_code"] == 500
    assert root["properties"]["$request_path"] == "/checkout"


def test_disabled_by_otel_python_disabled_instrumentations(capture_server: CaptureServer) -> None:
    out, err, status = _run_app(
        capture_server, {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "posthog"}
    )
    assert status == 500, err
    spans = _console_spans(out)
    assert spans, err
    assert not any(k.startswith("posthog.") for s in spans for k in s["attributes"])
    assert capture_server.named("$exception") == []
