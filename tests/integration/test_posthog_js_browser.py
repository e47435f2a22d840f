"""posthog-js in headless Chromium in front of an instrumented Flask app, both sending to the sink.

The page (tests/support/apps/flask_traced_shop.py) loads posthog-js (pinned in
tests/peers/node, served by the app itself: nothing from a CDN) with ``tracing_headers`` (the
``X-POSTHOG-DISTINCT-ID`` / ``-SESSION-ID`` / ``-WINDOW-ID`` headers) and
``trace_propagation_targets`` (a W3C ``traceparent`` per request), identifies a person, captures
an event and calls the app with ``fetch`` and ``XMLHttpRequest``. The app, run as its own process
with ``PosthogInstrumentor().instrument()`` and OpenTelemetry's Flask instrumentation, captures an
event on one route and raises on the other. The server-side events must carry posthog-js's
person, session and window, and the trace id of the ``traceparent`` the browser sent; the page
must log no console errors.

posthog-js's requests go through a recording proxy; ``POSTHOG_OTEL_RECORD_CORPUS=1`` saves them
under tests/corpus/ (replayed by tests/unit/sink/test_recorded_corpus.py). Needs chromium +
chromedriver (skips without them unless ``POSTHOG_OTEL_REQUIRE_BROWSER=1``) and node/npm for the
posthog-js package (see tests/support/node_peers.py).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posthog_otel.sink import SinkServer
from tests.support.browser import chromium, console_errors, missing_parts
from tests.support.node_peers import node_modules
from tests.support.procs import free_port, start, stop, wait_until_up
from tests.support.recording_proxy import RecordingProxy, save_corpus
from tests.support.sink_helpers import KEY
from tests.support.waiting import wait_until

pytestmark = pytest.mark.browser

APP = Path(__file__).resolve().parents[1] / "support" / "apps" / "flask_traced_shop.py"
JS_EVENTS = ("$pageview", "$identify", "cart_viewed")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = missing_parts()
    if missing:
        reason = (
            f"browser tests need {', '.join(missing)}: apt-get install chromium chromium-driver"
        )
        if os.environ.get("POSTHOG_OTEL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"POSTHOG_OTEL_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    with chromium() as started:
        yield started


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SinkServer]:
    with SinkServer(port=0, db_path=tmp_path / "posthog-js.sqlite3") as server:
        yield server


def _by_event(sink: SinkServer) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in sink.events(kind="event"):
        grouped.setdefault(row["event"], []).append(row)
    return grouped


def _results(browser: Any) -> dict[str, Any]:
    results: dict[str, Any] = browser.execute_script("return window.shopResults || {}")
    return results


def test_posthog_js_tracing_headers_into_an_instrumented_flask_app(
    browser: Any, sink: SinkServer
) -> None:
    bundle = node_modules() / "posthog-js" / "dist" / "array.full.js"
    port = free_port()
    with RecordingProxy(sink.url) as proxy:
        app = start(
            [sys.executable, str(APP)],
            env={
                "PORT": str(port),
                "POSTHOG_API_KEY": KEY,
                "POSTHOG_HOST": sink.url,
                "POSTHOG_JS_HOST": proxy.url,
                "POSTHOG_JS_BUNDLE": str(bundle),
            },
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url + "/favicon.ico", app)
            console_errors(browser)  # start from an empty console
            browser.get(url + "/")
            wait_until(
                lambda: _results(browser).get("done"), timeout=20, what="the page's API calls"
            )
            wait_until(
                lambda: all(name in _by_event(sink) for name in (*JS_EVENTS, "checkout_started")),
                timeout=20,
                what=lambda: (
                    f"posthog-js's and the app's events; the sink has {sorted(_by_event(sink))}, "
                    f"posthog-js sent {[(r.method, r.path, r.status) for r in proxy.requests]}, "
                    f"the console says {console_errors(browser)}"
                ),
                procs={"the Flask app": app},
            )
            # posthog-js may still be sending (a $pageleave, a late flush): let it settle
            time.sleep(1)
            errors = console_errors(browser)
        finally:
            _, app_err = stop(app)
        events = _by_event(sink)
        requests_seen = list(proxy.requests)

    results = _results(browser)
    sent = results["sent"]
    assert sent["distinct_id"] == "browser-user-1"
    assert sent["session_id"] and sent["window_id"]
    # the only console line at error level is the deliberate 500 of /api/fail
    [failed_load] = errors
    assert "/api/fail" in failed_load and "500" in failed_load, errors

    # posthog-js's own events, as the sink stored them
    for name in JS_EVENTS:
        for row in events[name]:
            assert row["properties"]["$session_id"] == sent["session_id"], name
            assert row["properties"]["$window_id"] == sent["window_id"], name
    [cart] = events["cart_viewed"]
    assert cart["distinct_id"] == "browser-user-1" and cart["session_id"] == sent["session_id"]
    assert all(r.status == 200 for r in requests_seen), [(r.path, r.status) for r in requests_seen]

    # what the app received: the three tracing headers and a traceparent, on fetch and XHR
    checkout_seen = results["checkout"]["seen"]
    fail_seen = json.loads(results["fail_headers"])
    assert results["fail_status"] == 500
    for seen in (checkout_seen, fail_seen):
        assert seen["x-posthog-distinct-id"] == "browser-user-1"
        assert seen["x-posthog-session-id"] == sent["session_id"]
        assert seen["x-posthog-window-id"] == sent["window_id"]
        assert seen["traceparent"] and seen["traceparent"].startswith("00-")
    checkout_trace = checkout_seen["traceparent"].split("-")[1]
    fail_trace = fail_seen["traceparent"].split("-")[1]
    assert checkout_trace != fail_trace  # posthog-js starts a trace per request

    # the app's events: same person, session and window, the browser's trace ids
    [started] = events["checkout_started"]
    [exception] = events["$exception"]
    for row, trace_id in ((started, checkout_trace), (exception, fail_trace)):
        props = row["properties"]
        assert row["distinct_id"] == "browser-user-1", app_err
        assert row["session_id"] == sent["session_id"]
        assert props["$session_id"] == sent["session_id"]
        assert props["$window_id"] == sent["window_id"]
        assert props["$trace_id"] == trace_id
        assert row["trace_id"] == trace_id
        assert props["cart"] == "c-9"
    assert started["properties"]["total"] == 42
    [entry] = exception["properties"]["$exception_list"]
    assert (entry["type"], entry["value"]) == ("RuntimeError", "card declined")
    save_corpus("posthog-js", [r for r in requests_seen if r.path.startswith("/e/")])
