"""Arbitrary input never crashes the sink: every body gets an answer, every row renders."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posthog_otel.sink import pages
from posthog_otel.sink.ingest import ingest_capture
from posthog_otel.sink.otlp import ingest_otlp
from posthog_otel.sink.store import EventFilter, EventStore

_KEYS = st.sampled_from(
    [
        "event",
        "distinct_id",
        "properties",
        "timestamp",
        "uuid",
        "api_key",
        "batch",
        "$set",
        "$exception_list",
        "type",
        "value",
        "stacktrace",
        "frames",
        "lineno",
        "in_app",
        "resourceSpans",
        "scopeSpans",
        "spans",
        "resourceLogs",
        "scopeLogs",
        "logRecords",
        "traceId",
        "spanId",
        "name",
        "attributes",
        "key",
        "stringValue",
        "arrayValue",
        "kvlistValue",
        "values",
        "events",
        "links",
        "body",
        "timeUnixNano",
        "status",
        "x",
    ]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        ["$exception", "phc_k", "2026-01-02T03:04:05Z", "5b8efff798038103d269b633813fc60c"]
    )
)
JSONISH = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=6),
    max_leaves=30,
)


def _render_everything(store: EventStore) -> None:
    for row in store.query(EventFilter(limit=50)):
        html = pages.event_page(store, row.id)
        assert html is not None and html.endswith("</html>")
        if row.distinct_id:
            assert pages.person_page(store, row.distinct_id).endswith("</html>")
    view = pages.ViewQuery.from_query({})
    assert pages.index_page(store, view).endswith("</html>")
    json.dumps(pages.live_update(store, view))


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=JSONISH, endpoint=st.sampled_from(["/batch/", "/e/"]))
def test_any_capture_body_is_answered_and_rendered(
    tmp_path: Path, body: Any, endpoint: str
) -> None:
    raw = json.dumps(body).encode()
    answer = ingest_capture(raw, endpoint=endpoint, headers={}, query={}, now=time.time())
    assert answer.status in (200, 400, 401, 413)
    assert answer.records
    if answer.status != 200:
        assert answer.body["code"] and answer.body["detail"]
        assert all(record.status == "rejected" for record in answer.records)
    store = EventStore(tmp_path / f"fuzz-{time.monotonic_ns()}.sqlite3")
    try:
        store.insert(answer.records)
        _render_everything(store)
    finally:
        store.close()


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=JSONISH, signal=st.sampled_from(["logs", "traces"]))
def test_any_otlp_json_body_is_answered_and_rendered(
    tmp_path: Path, body: Any, signal: str
) -> None:
    headers = {"content-type": "application/json", "authorization": "Bearer phc_k"}
    answer = ingest_otlp(
        json.dumps(body).encode(),
        signal=signal,
        endpoint="/i/v1/" + signal,
        headers=headers,
        now=time.time(),
    )
    assert answer.status in (200, 400)
    json.loads(answer.body)
    store = EventStore(tmp_path / f"fuzz-{time.monotonic_ns()}.sqlite3")
    try:
        store.insert(answer.records)
        _render_everything(store)
    finally:
        store.close()


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=200))
def test_any_bytes_are_answered(raw: bytes) -> None:
    answer = ingest_capture(raw, endpoint="/batch/", headers={}, query={}, now=time.time())
    assert answer.status in (200, 400, 401, 413)
    proto = ingest_otlp(
        raw,
        signal="traces",
        endpoint="/i/v1/traces",
        headers={"content-type": "application/x-protobuf", "authorization": "Bearer k"},
        now=time.time(),
    )
    assert proto.status in (200, 400, 415)
