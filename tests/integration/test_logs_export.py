"""Logs export end to end: a real Flask app with contrib's Flask instrumentation under
``PosthogInstrumentor(logs=True)``, logging inside a request, against the sink on loopback; and
``opentelemetry-instrument`` with ``POSTHOG_OTEL_LOGS=true`` in a subprocess."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
import requests
from opentelemetry import propagate
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as posthog
from posthog_otel import PosthogInstrumentor, global_client
from posthog_otel.instrumentors.flask import instrument_app
from posthog_otel.sink import SinkServer
from posthog_otel.sink.trace_view import trace_page
from tests.support.procs import BIN, free_port, start, stop, wait_until_up
from tests.support.routing import route_to
from tests.support.servers import wsgi_server

BROWSER = {
    "X-POSTHOG-DISTINCT-ID": "browser-user",
    "X-POSTHOG-SESSION-ID": "browser-session",
    "User-Agent": "Mozilla/5.0 (logs test)",
}


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SinkServer]:
    with SinkServer(port=0, db_path=tmp_path / "sink.sqlite3") as running:
        yield running


def _shop() -> flask.Flask:
    app = flask.Flask("shop")
    log = logging.getLogger("shop.orders")
    log.setLevel(logging.DEBUG)

    @app.route("/orders", methods=["POST"])
    def orders() -> dict[str, Any]:
        posthog.tag("plan", "pro")
        log.info("order %s placed", "o-17", extra={"order.total": 99.5})
        log.debug("cart details")  # below the INFO threshold
        logging.getLogger("posthog.otel").warning("our own line")  # never exported
        logging.getLogger("opentelemetry.sdk").warning("the SDK's line")  # never exported
        posthog.capture("order_completed", properties={"order_id": "o-17"})
        return {"ok": True}

    return app


def test_a_requests_logs_carry_the_browsers_identity_and_trace(sink: SinkServer) -> None:
    provider = TracerProvider()
    route_to(provider)
    instrumentor = PosthogInstrumentor()
    original = propagate.get_global_textmap()
    instrumentor.instrument(
        api_key=sink.api_key,
        host=sink.url,
        tracer_provider=provider,
        instrument_libraries=False,
        flush_interval=0.05,
        logs=True,
    )
    app = _shop()
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
    instrument_app(app)
    try:
        with wsgi_server(app) as url:
            response = requests.post(url + "/orders", headers=BROWSER, timeout=10)
            assert response.status_code == 200
        assert posthog.flush(10)
        (event,) = sink.wait_for(1, event="order_completed")
        (record,) = sink.wait_for(1, kind="otlp_log")
        stats = global_client.get_client().stats()["logs"]
    finally:
        FlaskInstrumentor().uninstrument_app(app)
        instrumentor.uninstrument()
        propagate.set_global_textmap(original)
        provider.shutdown()
    assert record["status"] == "accepted"
    assert record["properties"]["body"] == "order o-17 placed"
    assert record["distinct_id"] == "browser-user"
    assert record["session_id"] == "browser-session"
    attributes = record["properties"]["attributes"]
    assert attributes["posthogDistinctId"] == "browser-user"
    assert attributes["sessionId"] == "browser-session"
    assert attributes["posthog.tag.plan"] == "pro"
    assert attributes["posthog.tag.$request_path"] == "/orders"
    assert attributes["order.total"] == 99.5
    # the log sits in the request's span, next to the request's event
    assert record["trace_id"] == event["trace_id"] and record["trace_id"]
    assert record["span_id"] == event["properties"]["$span_id"]
    assert record["properties"]["resource"]["service.name"]
    page = trace_page(sink.store, record["trace_id"])
    assert page is not None
    assert "order o-17 placed" in page and "order_completed" in page
    # nothing else was exported: not the DEBUG line, not our own loggers' lines
    assert [r["properties"]["body"] for r in sink.events(kind="otlp_log")] == ["order o-17 placed"]
    assert stats["captured"] == 1 and stats["sent"] == 1 and stats["dropped_total"] == 0


_APP = """
import logging, os
import flask
import posthog_otel as posthog

app = flask.Flask("orders")
log = logging.getLogger("orders")
log.setLevel(logging.INFO)

@app.route("/health")
def health():
    return "ok"

@app.route("/order")
def order():
    log.warning("order placed for %s", posthog.get_context_distinct_id())
    log.info("below the threshold")
    posthog.capture("order_placed")
    return "ok"

app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
"""


def _order_once(sink: SinkServer, tmp_path: Path, env: dict[str, str]) -> str:
    """Run ``_APP`` under ``opentelemetry-instrument`` with PostHog logs on (WARNING and up) and
    ``env``, place one order as the browser, stop it (the exit flushes); its stderr."""
    script = tmp_path / "orders_app.py"
    script.write_text(_APP)
    port = free_port()
    full_env = {
        "PORT": str(port),
        "POSTHOG_API_KEY": sink.api_key,
        "POSTHOG_HOST": sink.url,
        "POSTHOG_OTEL_LOGS": "true",
        "POSTHOG_OTEL_LOGS_LEVEL": "WARNING",
        "OTEL_SERVICE_NAME": "orders",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        **env,
    }
    proc = start(
        [str(BIN / "opentelemetry-instrument"), str(BIN / "python"), str(script)], full_env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/health", proc)
        assert requests.get(base + "/order", headers=BROWSER, timeout=10).status_code == 200
    finally:
        _out, err = stop(proc)
    return err


@pytest.mark.parametrize("sdk_handler", [False, True], ids=["our-handler", "sdk-handler"])
def test_opentelemetry_instrument_with_posthog_otel_logs(
    sink: SinkServer, tmp_path: Path, sdk_handler: bool
) -> None:
    """Zero-code: ``POSTHOG_OTEL_LOGS=true``. With the SDK's own logging handler turned on as
    well (``OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED``), ours joins it: each record is
    exported to PostHog once."""
    err = _order_once(
        sink,
        tmp_path,
        {"OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "true" if sdk_handler else "false"},
    )
    (event,) = sink.wait_for(1, event="order_placed")
    records = sink.wait_for(1, kind="otlp_log")
    assert len(records) == 1, (records, err)  # once, whichever handler translated it
    (record,) = records
    assert record["properties"]["body"] == "order placed for browser-user"
    assert record["distinct_id"] == "browser-user"
    assert record["session_id"] == "browser-session"
    assert record["trace_id"] == event["trace_id"] and record["trace_id"]
    assert record["properties"]["resource"]["service.name"] == "orders"
    assert "Traceback" not in err, err


def test_traces_and_logs_together_one_trace_page(sink: SinkServer, tmp_path: Path) -> None:
    """``POSTHOG_OTEL_TRACES=true`` and ``POSTHOG_OTEL_LOGS=true``: the request's spans, its log
    line and its event arrive with the browser's identity, the log line inside the request's
    span, and the sink's trace page shows the three together."""
    err = _order_once(sink, tmp_path, {"POSTHOG_OTEL_TRACES": "true"})
    (event,) = sink.wait_for(1, event="order_placed")
    (record,) = sink.wait_for(1, kind="otlp_log")
    trace_id = record["trace_id"]
    assert trace_id and trace_id == event["trace_id"]
    spans = sink.wait_for(1, kind="otlp_span", trace_id=trace_id)
    (server_span,) = [s for s in spans if s["event"].endswith("/order")]
    assert record["span_id"] == server_span["span_id"]
    for row in (record, server_span, event):
        assert row["distinct_id"] == "browser-user", row
        assert row["session_id"] == "browser-session", row
    page = trace_page(sink.store, trace_id)
    assert page is not None
    assert "order placed for browser-user" in page and "order_placed" in page
    assert '<dd id="trace-logs">1</dd>' in page and '<dd id="trace-spans">' in page
    assert "Traceback" not in err, err
