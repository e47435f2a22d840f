"""Exceptions on child spans, the way Node.js services export them: identity set on the root
SERVER span only, no ``exception.escaped``, 64-bit times as text, span ``flags``. The bridge,
the in-process exporter and the sink's span page must agree on who and on "handled"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from posthog_otel import PosthogSpanExporter
from posthog_otel.bridge.pipeline import Pipeline
from posthog_otel.bridge.settings import BridgeSettings
from posthog_otel.errors import log_exception_handled, span_exception_handled
from posthog_otel.otlp.responses import JSON
from posthog_otel.sink.otlp import ingest_otlp
from posthog_otel.sink.pages import event_page
from posthog_otel.sink.store import EventStore
from posthog_otel.spans.mapping import ExportFamily, Identity
from posthog_otel.testing import memory_client

TRACE = "5b8efff798038103d269b633813fc60c"
ROOT_SPAN, CHILD_SPAN, GRANDCHILD_SPAN = "eee19b7ec3c1b174", "eee19b7ec3c1b173", "eee19b7ec3c1b172"
NODE_STACK = (
    "TypeError: Cannot read properties of undefined (reading 'total')\n"
    "    at priceOf (/srv/shop/cart.js:14:22)\n"
    "    at /srv/shop/node_modules/express/lib/router/layer.js:95:5\n"
)


def _span(
    span_id: str, parent: str, kind: int, attributes: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "flags": 257 if parent else 256,  # has-is-remote set, is-remote clear: a local parent
        "name": f"span {span_id}",
        "kind": kind,
        "startTimeUnixNano": "1718000000000000000",  # int64 as text, as OTLP JSON writes it
        "endTimeUnixNano": "1718000000250000000",
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()],
        **extra,
    }


def _exception_event() -> dict[str, Any]:
    return {
        "name": "exception",
        "timeUnixNano": "1718000000100000000",
        "attributes": [
            {"key": "exception.type", "value": {"stringValue": "TypeError"}},
            {"key": "exception.message", "value": {"stringValue": "Cannot read 'total'"}},
            {"key": "exception.stacktrace", "value": {"stringValue": NODE_STACK}},
        ],
    }


def node_export(child_status: int, *, child_attributes: dict[str, Any] | None = None) -> bytes:
    """One Node-like export: root SERVER span (identity), INTERNAL child, grandchild with the
    exception (and the given status code), children listed before the root as SDKs do."""
    root = _span(
        ROOT_SPAN,
        "",
        2,
        {
            "posthog.distinct_id": "user-7",
            "posthog.session_id": "sess-7",
            "posthog.tag.plan": "pro",
        },
    )
    child = _span(CHILD_SPAN, ROOT_SPAN, 1, {})
    grandchild = _span(
        GRANDCHILD_SPAN,
        CHILD_SPAN,
        1,
        child_attributes or {},
        events=[_exception_event()],
        status={"code": child_status},
    )
    request = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]
                },
                "scopeSpans": [{"scope": {"name": "n"}, "spans": [grandchild, child, root]}],
            }
        ]
    }
    return json.dumps(request).encode()


def bridge_events(body: bytes) -> list[dict[str, Any]]:
    client, events = memory_client()
    outcome = Pipeline(BridgeSettings.build(api_key="phc_test")).process(
        "traces", body, JSON, client
    )
    assert outcome.status == 200, outcome
    client.flush(5)
    return events


def test_child_exception_inherits_identity_session_and_tags_from_the_local_root() -> None:
    events = bridge_events(node_export(child_status=2))
    [exception] = [e for e in events if e["event"] == "$exception"]
    assert exception["distinct_id"] == "user-7"
    props = exception["properties"]
    assert props["$session_id"] == "sess-7"
    assert props["plan"] == "pro"
    assert props["$trace_id"] == TRACE and props["$span_id"] == GRANDCHILD_SPAN
    [entry] = props["$exception_list"]
    assert entry["mechanism"]["handled"] is False  # no escaped, status ERROR
    assert [f["in_app"] for f in entry["stacktrace"]["frames"]] == [False, True]


def test_a_childs_own_identity_wins_over_the_roots() -> None:
    events = bridge_events(
        node_export(2, child_attributes={"posthog.distinct_id": "worker", "posthog.tag.plan": "x"})
    )
    [exception] = [e for e in events if e["event"] == "$exception"]
    assert exception["distinct_id"] == "worker"
    assert exception["properties"]["$session_id"] == "sess-7"  # what it lacks still inherited
    assert exception["properties"]["plan"] == "x"


@pytest.mark.parametrize(("status_code", "handled"), [(2, False), (0, True), (1, True)])
def test_bridge_and_sink_page_say_the_same_about_handled(
    status_code: int, handled: bool, tmp_path: Path
) -> None:
    body = node_export(child_status=status_code)
    [exception] = [e for e in bridge_events(body) if e["event"] == "$exception"]
    assert exception["properties"]["$exception_list"][0]["mechanism"]["handled"] is handled

    answer = ingest_otlp(
        body,
        signal="traces",
        endpoint="/i/v1/traces",
        headers={"content-type": JSON, "authorization": "Bearer phc_test"},
        now=1718000001.0,
    )
    assert answer.status == 200
    [record] = [r for r in answer.records if r.span_id == GRANDCHILD_SPAN]
    store = EventStore(tmp_path / "sink.db")
    [row_id] = store.insert([record])
    html = event_page(store, row_id) or ""
    assert "Exceptions recorded on this span" in html
    assert ('badge bad">unhandled' in html) is not handled
    assert ('class="badge">handled' in html) is handled


def test_exporter_batch_children_inherit_from_the_root_exported_with_them() -> None:
    client, events = memory_client()
    provider = TracerProvider()
    processor = BatchSpanProcessor(PosthogSpanExporter(client), schedule_delay_millis=60_000)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    root_attributes = {"posthogDistinctId": "u-9", "sessionId": "s-9", "posthog.tag.team": "a"}
    root = tracer.start_as_current_span(
        "GET /cart", kind=SpanKind.SERVER, attributes=root_attributes
    )
    with root, tracer.start_as_current_span("price") as child:
        child.record_exception(ValueError("no price"))
        child.set_status(Status(StatusCode.ERROR))
    provider.force_flush()
    [exception] = [e for e in events if e["event"] == "$exception"]
    assert exception["distinct_id"] == "u-9"
    assert exception["properties"]["$session_id"] == "s-9"
    assert exception["properties"]["team"] == "a"
    # Python's SDK writes exception.escaped=False for a recorded exception: it wins
    assert exception["properties"]["$exception_list"][0]["mechanism"]["handled"] is True
    provider.shutdown()


def test_exporter_one_span_per_export_cannot_inherit() -> None:
    """What groupbytrace is for: a child exported alone has no relatives to inherit from."""
    client, events = memory_client()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(PosthogSpanExporter(client)))
    tracer = provider.get_tracer("t")
    root = tracer.start_as_current_span("GET /", kind=SpanKind.SERVER, attributes={"user.id": "u"})
    with root, tracer.start_as_current_span("child") as child:
        child.record_exception(ValueError("x"))
    [exception] = [e for e in events if e["event"] == "$exception"]
    assert exception["distinct_id"] != "u"


class _Ids:
    def __init__(self, trace_id: int, span_id: int) -> None:
        self.trace_id, self.span_id = trace_id, span_id


class _Parent:
    def __init__(self, span_id: int) -> None:
        self.span_id, self.is_remote = span_id, False


class _FakeSpan:
    def __init__(self, span_id: int, parent: int | None, attributes: dict[str, Any]) -> None:
        self.context = _Ids(1, span_id)
        self.parent = _Parent(parent) if parent is not None else None
        self.attributes = attributes


def test_parent_cycles_end_the_walk() -> None:
    a = _FakeSpan(1, 2, {})
    b = _FakeSpan(2, 1, {"user.id": "from-b"})
    family = ExportFamily([a, b])
    assert family.complete(a, Identity({}, {})).distinct_id == "from-b"


def test_the_handled_rule() -> None:
    assert span_exception_handled("true", span_failed=False) is False
    assert span_exception_handled("False", span_failed=True) is True
    assert span_exception_handled(None, span_failed=True) is False
    assert span_exception_handled("maybe", span_failed=False) is True
    assert log_exception_handled(None, severity_number=17) is True
    assert log_exception_handled(None, severity_number=21) is False
    assert log_exception_handled(True, severity_number=9) is False
