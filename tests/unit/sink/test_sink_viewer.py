"""The sink's viewer pages and JSON API over HTTP (rendering, escaping, filters, reset).

The same pages in a real browser are covered by tests/integration/test_sink_browser.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from posthog_otel.sink import SinkServer
from tests.support.sink_helpers import batch, event, post

XSS_NAME = "<script>window.__xss=1</script>"
XSS_ID = '"><img src=x onerror="window.__xss=2">'


def _get(sink: SinkServer, path: str, **params: Any) -> requests.Response:
    response = requests.get(sink.url + path, params=params, timeout=10)
    return response


def _row_ids(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr(?: class="rejected")? data-id="(\d+)"', html)]


@pytest.fixture
def filled(posthog_sink: SinkServer) -> SinkServer:
    events = [
        event("signed_up", "user-1", properties={"$session_id": "s-1", "plan": "pro"}),
        event("checkout", "user-1", properties={"$session_id": "s-1", "$trace_id": "a" * 32}),
        event("checkout", "user-2", properties={"$session_id": "s-2"}),
        event("$set", "user-1", **{"$set": {"email": "one@example.com"}}),
        event("$set_once", "user-1", **{"$set_once": {"first": "yes"}}),
        event("$set_once", "user-1", **{"$set_once": {"first": "no"}}),
    ]
    assert post(posthog_sink.url + "/batch/", batch(*events)).status_code == 200
    return posthog_sink


def test_index_lists_newest_first_with_chart_and_security_headers(filled: SinkServer) -> None:
    response = _get(filled, "/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    ids = _row_ids(response.text)
    assert ids == sorted(ids, reverse=True) and len(ids) == 6
    assert '<svg class="chart"' in response.text
    assert "<title>checkout: 2 at " in response.text
    assert 'data-live-url="/_live' in response.text
    # no external assets: every src/href is local
    for url in re.findall(r'(?:src|href)="([^"]+)"', response.text):
        assert url.startswith("/"), url


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"event": "checkout"}, 2),
        ({"distinct_id": "user-2"}, 1),
        ({"session_id": "s-1"}, 2),
        ({"trace_id": "A" * 32}, 1),
        ({"status": "rejected"}, 0),
        ({"kind": "otlp_span"}, 0),
        ({"event": "checkout", "distinct_id": "user-1"}, 1),
    ],
)
def test_filters(filled: SinkServer, params: dict[str, str], expected: int) -> None:
    html = _get(filled, "/", **params).text
    assert len(_row_ids(html)) == expected
    live = _get(filled, "/_live", **params).json()
    assert len(_row_ids(live["rows"])) == expected
    api = _get(filled, "/api/events", **params).json()
    assert api["count"] == expected


def test_live_update_version_changes_with_new_events(filled: SinkServer) -> None:
    before = _get(filled, "/_live").json()
    again = _get(filled, "/_live").json()
    assert before["version"] == again["version"]
    post(filled.url + "/batch/", batch(event("late")))
    after = _get(filled, "/_live").json()
    assert after["version"] != before["version"]
    assert ">late</a>" in after["rows"]
    assert after["summary"].startswith("7 received")


def test_person_page_merges_person_properties(filled: SinkServer) -> None:
    html = _get(filled, "/person", distinct_id="user-1").text
    assert '<dd id="person-count">5</dd>' in html
    assert "one@example.com" in html
    assert "&quot;first&quot;: &quot;yes&quot;" in html  # $set_once keeps the first value
    assert "/?session_id=s-1" in html
    assert _get(filled, "/person").status_code == 400


def test_event_page_shows_all_properties(filled: SinkServer) -> None:
    (row,) = filled.events("signed_up")
    html = _get(filled, f"/events/{row['id']}").text
    assert "&quot;plan&quot;: &quot;pro&quot;" in html
    assert row["uuid"] in html
    assert "/person?distinct_id=user-1" in html
    assert _get(filled, "/events/999999").status_code == 404
    assert _get(filled, "/api/events/999999").status_code == 404
    assert _get(filled, f"/api/events/{row['id']}").json()["event"] == "signed_up"


def test_untrusted_values_are_escaped_everywhere(posthog_sink: SinkServer) -> None:
    hostile = event(
        XSS_NAME,
        XSS_ID,
        properties={"$session_id": XSS_ID, XSS_NAME: XSS_ID, "$trace_id": XSS_NAME},
    )
    entry = {
        "type": XSS_NAME,
        "value": XSS_ID,
        "stacktrace": {
            "frames": [
                {
                    "function": XSS_NAME,
                    "filename": XSS_ID,
                    "lineno": 1,
                    "context_line": XSS_NAME,
                    "pre_context": [XSS_ID],
                    "post_context": [],
                    "in_app": True,
                }
            ]
        },
    }
    crash = event("$exception", XSS_ID, properties={"$exception_list": [entry]})
    assert post(posthog_sink.url + "/batch/", batch(hostile, crash)).status_code == 200
    post(posthog_sink.url + "/batch/", batch(event(XSS_NAME, uuid=XSS_ID)))  # rejected
    pages = [
        _get(posthog_sink, "/").text,
        _get(posthog_sink, "/", event=XSS_NAME).text,
        _get(posthog_sink, "/_live").json()["rows"],
        _get(posthog_sink, "/_live").json()["chart"],
        _get(posthog_sink, "/person", distinct_id=XSS_ID).text,
        *[
            _get(posthog_sink, f"/events/{row['id']}").text
            for row in posthog_sink.events(status=None)
        ],
    ]
    for html in pages:
        assert "<script>window" not in html
        assert "<img src=x" not in html
        assert 'onerror="' not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in pages[0]


def test_api_reset_and_limits(filled: SinkServer) -> None:
    assert _get(filled, "/api/events", limit="2").json()["count"] == 2
    first = _get(filled, "/api/events", limit="1").json()["events"][0]["id"]
    assert _get(filled, "/api/events", after_id=str(first - 1)).json()["count"] == 1
    assert _get(filled, "/api/events", limit="x").status_code == 400
    assert _get(filled, "/api/events", kind="nope").status_code == 400
    deleted = requests.delete(filled.url + "/api/events", timeout=10).json()
    assert deleted == {"deleted": 6}
    assert _get(filled, "/api/events").json() == {"count": 0, "events": []}
    assert "No events yet" in _get(filled, "/").text


def test_static_assets(posthog_sink: SinkServer) -> None:
    css = _get(posthog_sink, "/static/app.css")
    js = _get(posthog_sink, "/static/app.js")
    assert css.headers["Content-Type"].startswith("text/css") and ".frame.in-app" in css.text
    assert js.headers["Content-Type"].startswith("text/javascript") and "/_live" not in js.text
    assert "innerHTML = data.rows" in js.text
    assert json.loads(_get(posthog_sink, "/healthz").text)["events"] == 0
