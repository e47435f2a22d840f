"""Traces to PostHog end to end: ``opentelemetry-instrument`` + ``POSTHOG_OTEL_TRACES=true`` +
a real Flask app with contrib's Flask, requests and sqlite3 instrumentations, against the sink.

The browser's distinct id and session (X-POSTHOG-* headers) are on every span of the request,
``posthog_otel.start_span`` nests with the instrumentations' spans, the events arrive too; with
the sampler at 0.0 no span is exported but the events still are.
"""

from __future__ import annotations

from typing import Any

import requests

from posthog_otel.sink import SinkServer
from tests.support.procs import BIN, free_port, start, stop, wait_until_up

BROWSER = {"X-POSTHOG-DISTINCT-ID": "browser-user", "X-POSTHOG-SESSION-ID": "browser-session"}


def _run(sink: SinkServer, extra_env: dict[str, str] | None = None) -> tuple[str, int]:
    port = free_port()
    env = {
        "PORT": str(port),
        "POSTHOG_API_KEY": "phc_traces_e2e",
        "POSTHOG_HOST": sink.url,
        "POSTHOG_OTEL_TRACES": "true",
        "OTEL_SERVICE_NAME": "orders",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,service.version=1.0",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        **(extra_env or {}),
    }
    proc = start(
        [
            str(BIN / "opentelemetry-instrument"),
            str(BIN / "python"),
            "tests/support/apps/flask_traced_orders.py",
        ],
        env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/health", proc)
        response = requests.get(base + "/order", headers=BROWSER, timeout=20)
        status = response.status_code
    finally:
        _, err = stop(proc)  # SIGTERM-free exit: the provider's exit hook flushes
    return err, status


def _spans(sink: SinkServer, count: int) -> dict[str, dict[str, Any]]:
    rows = sink.wait_for(count, kind="otlp_span", timeout=20)
    return {row["event"]: row for row in rows}


def test_every_span_of_the_request_reaches_posthog_with_the_browsers_identity(
    posthog_sink: SinkServer,
) -> None:
    err, status = _run(posthog_sink)
    assert status == 200, err
    orders = posthog_sink.wait_for(1, kind="event", event="order_placed", timeout=20)
    # the two requests' server spans, start_span's, the requests call's, three queries
    rows = posthog_sink.wait_for(8, kind="otlp_span", timeout=20)
    # our own uploads to PostHog create no spans (no feedback loop through requests)
    assert not any("/i/v1/" in str(row["properties"]["attributes"]) for row in rows)
    spans = [row for row in rows if not row["event"].endswith("/health")]
    names = {row["event"] for row in spans}
    assert {"GET /order", "price order", "GET", "GET /stock"} <= names, names
    assert any(row["properties"]["attributes"].get("db.system") == "sqlite" for row in spans), names
    for row in spans:
        assert row["distinct_id"] == "browser-user", row["event"]
        assert row["session_id"] == "browser-session", row["event"]
        attributes = row["properties"]["attributes"]
        assert attributes["posthogDistinctId"] == "browser-user"
        assert attributes["sessionId"] == "browser-session"
        resource = row["properties"]["resource"]
        assert resource["service.name"] == "orders"
        assert resource["deployment.environment"] == "test"
        assert resource["service.version"] == "1.0"
    by_name = {row["event"]: row for row in spans}
    root = by_name["GET /order"]
    assert root["properties"]["kind"] == "SERVER"
    # start_span nests under the instrumentation's server span; the sqlite span under it
    assert by_name["price order"]["properties"]["parent_span_id"] == root["span_id"]
    sqlite = next(r for r in spans if r["properties"]["attributes"].get("db.system") == "sqlite")
    assert sqlite["properties"]["parent_span_id"] == by_name["price order"]["span_id"]
    # the outgoing call continues the trace in the second request's server span
    assert by_name["GET"]["properties"]["kind"] == "CLIENT"
    assert by_name["GET /stock"]["properties"]["parent_span_id"] == by_name["GET"]["span_id"]
    assert len({row["trace_id"] for row in spans}) == 1
    (order,) = orders
    assert order["distinct_id"] == "browser-user"
    assert order["properties"]["$session_id"] == "browser-session"
    assert order["trace_id"] == root["trace_id"]


def test_sampling_at_zero_exports_no_span_but_still_sends_events(
    posthog_sink: SinkServer,
) -> None:
    err, status = _run(
        posthog_sink, {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.0"}
    )
    assert status == 200, err
    (order,) = posthog_sink.wait_for(1, kind="event", event="order_placed", timeout=20)
    assert order["distinct_id"] == "browser-user"
    assert posthog_sink.events(kind="otlp_span") == []
