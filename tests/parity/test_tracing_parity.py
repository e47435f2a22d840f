"""Differential: posthog-python's own ``start_span`` tracing and ours, the same calls, each to
its own loopback sink; the OTLP spans that arrive carry the same identity attributes and the same
structure (names, kinds, parent links, status, exception events).

posthog-python (the oracle) exports its own OTLP JSON; posthog-otel exports OpenTelemetry SDK
spans through OpenTelemetry's OTLP/HTTP exporter. Ids are random on both sides, so parents are
compared by the parent's name (a remote parent by its id, which both continue from the same
``traceparent``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import posthog
import pytest
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel
from posthog_otel.sink import SinkServer

KEY = "phc_tracing_parity"
INBOUND_TRACE = "0af7651916cd43dd8448eb211c80319c"
INBOUND = f"00-{INBOUND_TRACE}-b7ad6b7169203331-01"
IDENTITY_KEYS = ("posthogDistinctId", "sessionId")


def scenario(module: ModuleType, client: Any) -> None:
    """posthog-python's documented tracing calls, spelled the same for both libraries."""
    with module.new_context():
        module.identify_context("ada")
        module.set_context_session("session-ada")
        with client.start_span("POST /checkout", kind="server", attributes={"plan": "pro"}):
            with client.start_span("db.query", kind="client") as query:
                query.set_attribute("db.rows", 3).set_attributes({"db.system": "sqlite"})
                query.add_event("cache.miss", {"key": "user:42"})
            try:
                with client.start_span("charge card", kind="client"):
                    raise ValueError("card declined")
            except ValueError:
                pass
            with client.start_span("handled") as handled:
                try:
                    raise KeyError("sku")
                except KeyError as exc:
                    handled.record_exception(exc)
            manual = client.start_span("manual", kind="producer")
            manual.set_status("ok")
            manual.end()
            try:
                with client.start_span("ok wins") as ok:
                    ok.set_status("ok")
                    active = client.get_active_span()
                    assert active is not None and active.traceparent() == ok.traceparent()
                    raise RuntimeError("after ok")
            except RuntimeError:
                pass
            with client.start_span("renamed later") as renamed:
                renamed.update_name("renamed")
    with module.new_context():
        module.identify_context("grace")
        with client.start_span(
            "continue remote", kind="consumer", parent=INBOUND, tracestate="v=1"
        ) as remote:
            assert remote.traceparent().split("-")[1] == INBOUND_TRACE
            assert remote.tracestate() == "v=1"
            with client.start_span("inner"):
                pass
    # no context: no identity on the span
    with client.start_span("anonymous"):
        pass


def _shape(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_id = {row["span_id"]: row["event"] for row in rows}
    shapes: dict[str, dict[str, Any]] = {}
    for row in rows:
        props = row["properties"]
        parent = props["parent_span_id"]
        attributes = props["attributes"]
        shapes[row["event"]] = {
            "kind": props["kind"],
            "parent": by_id.get(parent, parent),
            "remote_trace": row["trace_id"] == INBOUND_TRACE,
            "status": props["status"]["code"],
            "status_message": props["status"]["message"],
            "identity": {key: attributes.get(key) for key in IDENTITY_KEYS},
            "user_attributes": {
                key: value
                for key, value in attributes.items()
                if key in ("plan", "db.rows", "db.system")
            },
            "events": [
                (
                    event["name"],
                    (event["attributes"] or {}).get("exception.type"),
                    (event["attributes"] or {}).get("exception.message"),
                    "exception.stacktrace" in (event["attributes"] or {}),
                )
                for event in props["events"]
            ],
        }
    return shapes


def _run(
    tmp_path: Path, name: str, make: Callable[[str], tuple[ModuleType, Any, Callable[[], None]]]
) -> dict[str, dict[str, Any]]:
    with SinkServer(port=0, db_path=tmp_path / f"{name}.sqlite3") as sink:
        module, client, finish = make(sink.url)
        scenario(module, client)
        finish()
        rows = sink.wait_for(10, kind="otlp_span", timeout=20)
        return _shape(rows)


def test_the_same_spans_reach_posthog_from_both_libraries(tmp_path: Path) -> None:
    def theirs(url: str) -> tuple[ModuleType, Any, Callable[[], None]]:
        client = posthog.Client(KEY, host=url, traces={"service_name": "shop"})
        return posthog, client, lambda: client.shutdown()

    provider = TracerProvider()

    def ours(url: str) -> tuple[ModuleType, Any, Callable[[], None]]:
        client = posthog_otel.Client(KEY, host=url)
        assert client.enable_traces({"service_name": "shop"}, tracer_provider=provider)
        return posthog_otel, client, lambda: client.shutdown(5)

    expected = _run(tmp_path, "posthog-python", theirs)
    got = _run(tmp_path, "posthog-otel", ours)
    provider.shutdown()
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name] == expected[name], name
    # the oracle really stamped identity (a comparison of two empty sets proves nothing)
    assert expected["db.query"]["identity"] == {
        "posthogDistinctId": "ada",
        "sessionId": "session-ada",
    }
    assert expected["charge card"]["events"][0][:3] == ("exception", "ValueError", "card declined")
    assert expected["ok wins"]["status"] == "OK" and expected["ok wins"]["events"]
    assert expected["inner"]["parent"] == "continue remote"
    assert expected["continue remote"]["parent"] == "b7ad6b7169203331"


@pytest.mark.parametrize("parent", [None, INBOUND, "garbage"])
def test_off_both_return_inert_handles_that_forward_the_inbound_trace(parent: Any) -> None:
    theirs = posthog.Client(KEY, host="http://127.0.0.1:9").start_span("x", parent=parent)
    ours = posthog_otel.Client(KEY, host="http://127.0.0.1:9").start_span("x", parent=parent)
    with theirs as their_span, ours as our_span:
        assert our_span.traceparent() == their_span.traceparent()
        assert our_span.tracestate() == their_span.tracestate()
    assert our_span.set_attribute("a", 1) is our_span
    assert their_span.set_attribute("a", 1) is their_span
