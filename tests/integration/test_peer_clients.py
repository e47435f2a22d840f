"""Real clients that other people wrote, against the sink and the bridge: the Node.js
OpenTelemetry SDK (OTLP protobuf and JSON, gzip; and calling an instrumented Flask app with
``traceparent`` and ``posthog.*`` baggage), posthog-node (capture v0 and v1, logs) and
posthog-python (posthog-js in a browser: tests/integration/test_posthog_js_browser.py). The Node packages come from npm, pinned in tests/peers/node (see
tests/support/node_peers.py: skipped without node/npm locally, required in CI).

Every request goes through a recording proxy; ``POSTHOG_OTEL_RECORD_CORPUS=1`` saves them under
tests/corpus/, which tests/unit/sink/test_recorded_corpus.py replays without Node.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posthog_otel.bridge.app import create_app
from posthog_otel.bridge.settings import BridgeSettings
from posthog_otel.sink import SinkServer
from tests.support.node_peers import run_node
from tests.support.procs import free_port, start, stop, wait_until_up
from tests.support.recording_proxy import RecordingProxy, save_corpus
from tests.support.servers import uvicorn_server
from tests.support.sink_helpers import KEY
from tests.support.waiting import wait_until

FLASK_APP = Path(__file__).resolve().parents[1] / "support" / "apps" / "flask_traced_shop.py"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SinkServer]:
    with SinkServer(port=0, db_path=tmp_path / "peers.sqlite3") as server:
        yield server


def _rows(sink: SinkServer, **where: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = sink.events(**where)
    return rows


@pytest.mark.parametrize("otlp_format", ["protobuf", "json"])
def test_node_opentelemetry_sdk_into_the_sink(sink: SinkServer, otlp_format: str) -> None:
    with RecordingProxy(sink.url) as proxy:
        out = run_node(
            "otel_export.js", otlp_format, proxy.url + "/i/v1/traces", env={"POSTHOG_API_KEY": KEY}
        )
    ids = json.loads(out)
    [request] = proxy.requests
    assert request.status == 200
    assert request.headers["content-encoding"] == "gzip"
    spans = {row["span_id"]: row for row in _rows(sink, kind="otlp_span")}
    root, child = spans[ids["rootSpanId"]], spans[ids["childSpanId"]]
    assert root["trace_id"] == child["trace_id"] == ids["traceId"]
    assert root["distinct_id"] == "node-user-1" and root["session_id"] == "node-session-1"
    assert child["properties"]["status"]["code"] == "ERROR"
    [exception] = child["properties"]["events"]
    assert exception["attributes"]["exception.type"] == "SyntaxError"
    save_corpus(f"node-otel-{otlp_format}", proxy.requests)


@pytest.mark.parametrize("otlp_format", ["protobuf", "json"])
def test_node_opentelemetry_sdk_through_the_bridge(sink: SinkServer, otlp_format: str) -> None:
    settings = BridgeSettings.build(
        api_key=KEY, posthog_host=sink.url, environ={}, capture_spans="roots"
    )
    with uvicorn_server(create_app(settings)) as bridge, RecordingProxy(bridge) as proxy:
        out = run_node(
            "otel_export.js", otlp_format, proxy.url + "/v1/traces", env={"POSTHOG_API_KEY": KEY}
        )
        ids = json.loads(out)
        wait_until(lambda: len(_rows(sink, kind="event")) >= 2, timeout=15, what="bridge events")
    assert [r.status for r in proxy.requests] == [200]
    [exception] = _rows(sink, event="$exception")
    # identity was set on the root SERVER span only: the child's exception inherits it
    assert exception["distinct_id"] == "node-user-1"
    assert exception["session_id"] == "node-session-1"
    props = exception["properties"]
    assert props["plan"] == "pro" and props["$trace_id"] == ids["traceId"]
    [entry] = props["$exception_list"]
    assert entry["type"] == "SyntaxError"
    assert entry["mechanism"]["handled"] is False  # Node never sets escaped; status ERROR
    frames = entry["stacktrace"]["frames"]
    innermost = frames[-1]
    assert (innermost["function"], innermost["in_app"]) == ("JSON.parse", False)
    own = [f for f in frames if f["in_app"]]
    assert own and all(f["filename"].endswith("otel_export.js") for f in own)
    assert all(not f["in_app"] for f in frames if "node_modules" in f["filename"])
    [root_event] = _rows(sink, event="POST /checkout")
    assert root_event["distinct_id"] == "node-user-1"


@pytest.mark.parametrize("mode", ["v0", "v1"])
def test_posthog_node_events_and_logs(sink: SinkServer, mode: str) -> None:
    with RecordingProxy(sink.url) as proxy:
        out = run_node(
            "posthog_node.js",
            proxy.url,
            env={"POSTHOG_API_KEY": KEY, "POSTHOG_CAPTURE_MODE": mode},
        )
    assert json.loads(out)["errors"] == []
    paths = sorted(r.path.split("?")[0] for r in proxy.requests)
    expected_capture = "/i/v1/analytics/events" if mode == "v1" else "/batch/"
    assert expected_capture in paths
    assert all(r.status == 200 for r in proxy.requests), [
        (r.path, r.status) for r in proxy.requests
    ]
    [event] = _rows(sink, event="invoice paid")
    assert event["distinct_id"] == "node-user-2"
    assert event["session_id"] == "node-session-2"
    assert event["properties"]["amount"] == 42
    [log] = _rows(sink, kind="otlp_log")
    assert log["properties"]["body"] == "card declined"
    assert any(r.path.startswith("/i/v1/logs?token=") for r in proxy.requests)
    save_corpus(f"posthog-node-{mode}", proxy.requests)


def test_posthog_python(sink: SinkServer) -> None:
    from posthog import Posthog

    with RecordingProxy(sink.url) as proxy:
        client = Posthog(KEY, host=proxy.url, sync_mode=True, gzip=True)
        client.capture(
            "report exported",
            distinct_id="py-user",
            properties={"$session_id": "py-session", "rows": 3},
        )
        client.shutdown()
    assert [r.status for r in proxy.requests] == [200]
    [event] = _rows(sink, event="report exported")
    assert (event["distinct_id"], event["session_id"]) == ("py-user", "py-session")
    save_corpus("posthog-python", proxy.requests)


def test_node_opentelemetry_sdk_calls_an_instrumented_flask_app(sink: SinkServer) -> None:
    """A Node.js service traced with the OpenTelemetry SDK calls a Flask app instrumented with
    ``PosthogInstrumentor().instrument()`` (plus contrib's Flask instrumentation for the SERVER
    span), sending ``traceparent`` and the person, session and a tag as ``posthog.*`` baggage."""
    port = free_port()
    app = start(
        [sys.executable, str(FLASK_APP)],
        env={"PORT": str(port), "POSTHOG_API_KEY": KEY, "POSTHOG_HOST": sink.url},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url + "/favicon.ico", app)
        out = run_node(
            "otel_export.js",
            "protobuf",
            sink.url + "/i/v1/traces",
            url + "/api/checkout",
            env={"POSTHOG_API_KEY": KEY},
        )
        ids = json.loads(out)
        wait_until(
            lambda: _rows(sink, event="checkout_started"),
            timeout=15,
            what="the Flask app's event",
            procs={"the Flask app": app},
        )
    finally:
        stop(app)
    assert ids["nextStatus"] == 200
    seen = json.loads(ids["nextBody"])["seen"]
    assert seen["traceparent"].split("-")[1:3] == [ids["traceId"], ids["rootSpanId"]]
    [started] = _rows(sink, event="checkout_started")
    props = started["properties"]
    assert (started["distinct_id"], started["session_id"]) == ("node-user-1", "node-session-1")
    assert props["$session_id"] == "node-session-1"
    assert props["$trace_id"] == started["trace_id"] == ids["traceId"]
    assert props["plan"] == "pro" and props["cart"] == "c-9" and props["total"] == 42
    # the Node spans arrived too, in the same trace
    node_spans = _rows(sink, kind="otlp_span")
    assert {row["trace_id"] for row in node_spans} == {ids["traceId"]}
