"""The sink's trace page: OTLP spans from the real OpenTelemetry SDK and PostHog events from
the real client, one trace, one timeline; and the viewer's other not-found answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

import posthog_otel as posthog
from posthog_otel.sink import SinkServer
from tests.support.sink_helpers import KEY, batch, event, post

_ROW = re.compile(r'<div class="tl-row tl-([a-z-]+) d(\d)" data-id="(\d+)" data-kind="[a-z-]+">')


class Declined(Exception):
    pass


@pytest.fixture
def traced(posthog_sink: SinkServer) -> Iterator[tuple[SinkServer, str]]:
    """One request as an app would send it: spans over OTLP, events through the client."""
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(
                endpoint=posthog_sink.url + "/i/v1/traces",
                headers={"Authorization": f"Bearer {KEY}"},
            )
        )
    )
    tracer = provider.get_tracer("checkout")
    client = posthog_sink.client()
    with posthog.new_context():
        posthog.identify_context("ada")
        posthog.set_context_session("session-ada")
        with tracer.start_as_current_span(
            "POST /checkout", kind=trace.SpanKind.SERVER, attributes={"posthogDistinctId": "ada"}
        ) as root:
            client.capture("checkout_started", properties={"total": 42})
            with tracer.start_as_current_span("charge card") as child:
                try:
                    raise Declined("card declined")
                except Declined as exc:
                    child.record_exception(exc)
                    client.capture_exception(exc)
    assert client.flush(10)
    client.shutdown(1)
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    posthog_sink.wait_for(2, kind="otlp_span", trace_id=trace_id)
    posthog_sink.wait_for(2, kind="event", trace_id=trace_id)
    yield posthog_sink, trace_id


def _timeline(html: str) -> list[tuple[str, int, int]]:
    return [(kind, int(depth), int(row)) for kind, depth, row in _ROW.findall(html)]


def test_spans_events_and_exceptions_of_a_trace_on_one_timeline(
    traced: tuple[SinkServer, str],
) -> None:
    sink, trace_id = traced
    response = requests.get(f"{sink.url}/traces/{trace_id}", timeout=10)
    assert response.status_code == 200
    html = response.text
    rows = {row["id"]: row for row in sink.events(trace_id=trace_id, status=None)}
    timeline = _timeline(html)
    names = [(kind, depth, rows[row]["event"]) for kind, depth, row in timeline]
    # the root span, then what happened inside it, nested by span
    assert names[0] == ("span", 0, "POST /checkout")
    assert ("event", 1, "checkout_started") in names
    assert ("span", 1, "charge card") in names
    assert ("exception", 2, "$exception") in names  # captured inside "charge card"
    assert ("span-exception", 2, "charge card") in names  # recorded on the span
    assert names.index(("span", 1, "charge card")) < names.index(("exception", 2, "$exception"))
    assert len(timeline) == 5
    assert 'href="/person?distinct_id=ada"' in html
    assert "session-ada" in html
    assert '<dd id="trace-spans">2</dd>' in html
    assert '<dd id="trace-exceptions">2</dd>' in html
    assert "Declined: card declined" in html
    # bars carry no text: every label is HTML outside the stretched SVGs
    for svg in re.findall(r'<svg class="tl-bar".*?</svg>', html):
        assert "<text" not in svg
    # the id is matched case-insensitively
    upper = requests.get(f"{sink.url}/traces/{trace_id.upper()}", timeout=10)
    assert upper.status_code == 200 and _timeline(upper.text) == timeline


def test_every_trace_id_links_to_its_trace_page(traced: tuple[SinkServer, str]) -> None:
    sink, trace_id = traced
    index = requests.get(sink.url + "/", timeout=10).text
    links = re.findall(r'href="(/traces/[0-9a-f]+)"', index)
    assert links and set(links) == {f"/traces/{trace_id}"}
    assert len(links) == len(sink.events(status=None))
    (crash,) = sink.events("$exception")
    page = requests.get(f"{sink.url}/events/{crash['id']}", timeout=10).text
    assert f'id="trace-link" href="/traces/{trace_id}"' in page


@pytest.mark.parametrize(
    "path",
    ["/traces/" + "0" * 32, "/traces/not-hex", "/traces/" + "a" * 65, "/traces/"],
)
def test_an_unknown_trace_is_a_not_found_page(posthog_sink: SinkServer, path: str) -> None:
    response = requests.get(posthog_sink.url + path, timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<h1>Not found</h1>" in response.text


def test_an_unknown_person_is_a_not_found_page(posthog_sink: SinkServer) -> None:
    post(posthog_sink.url + "/batch/", batch(event("signed_up", "known")))
    known = requests.get(posthog_sink.url + "/person", params={"distinct_id": "known"}, timeout=10)
    assert known.status_code == 200
    unknown = requests.get(
        posthog_sink.url + "/person", params={"distinct_id": "nobody"}, timeout=10
    )
    assert unknown.status_code == 404
    assert "<h1>Not found</h1>" in unknown.text
    assert "nobody" in unknown.text
    assert 'id="person-count"' not in unknown.text


def _ordered(sink: SinkServer, path: str, **params: Any) -> list[int]:
    html = requests.get(sink.url + path, params=params, timeout=10).text
    return [int(x) for x in re.findall(r'<tr(?: class="rejected")? data-id="(\d+)"', html)]


def test_lists_are_ordered_by_event_time_with_arrival_on_hover(posthog_sink: SinkServer) -> None:
    """A late event (sent after newer ones) sits where its event time puts it."""
    for name, stamp in (
        ("second", "2026-01-02T03:04:10.250+00:00"),
        ("third", "2026-01-02T03:04:20.500+00:00"),
        ("first", "2026-01-02T03:04:05.007+00:00"),  # arrives last
    ):
        post(posthog_sink.url + "/batch/", batch(event(name, "u1", timestamp=stamp)))
    ids = {row["event"]: row["id"] for row in posthog_sink.events()}
    newest_first = [ids["third"], ids["second"], ids["first"]]
    assert _ordered(posthog_sink, "/") == newest_first
    assert _ordered(posthog_sink, "/person", distinct_id="u1") == newest_first
    live = requests.get(posthog_sink.url + "/_live", timeout=10).json()["rows"]
    assert [int(x) for x in re.findall(r'data-id="(\d+)"', live)] == newest_first
    html = requests.get(posthog_sink.url + "/", timeout=10).text
    # event time with milliseconds, arrival in the tooltip
    cell = re.search(rf'data-id="{ids["first"]}"><td class="when">(<time[^>]*>[^<]*</time>)', html)
    assert cell is not None
    assert re.search(r">(?:\w{3} \d\d )?\d\d:\d\d:\d\d\.007</time>", cell[1]), cell[1]
    assert "event time 2026-01-02" in cell[1] and "received " in cell[1]
    # the JSON API keeps its documented arrival order
    api = requests.get(posthog_sink.url + "/api/events", timeout=10).json()["events"]
    assert [row["id"] for row in api] == sorted(ids.values(), reverse=True)


def test_event_properties_are_a_key_value_table_with_the_json_a_click_away(
    posthog_sink: SinkServer,
) -> None:
    props = {"plan": "pro", "seats": 3, "flags": {"beta": True}, "$current_url": "http://x/"}
    post(posthog_sink.url + "/batch/", batch(event("upgraded", "u1", properties=props)))
    (row,) = posthog_sink.events("upgraded")
    html = requests.get(f"{posthog_sink.url}/events/{row['id']}", timeout=10).text
    table = html.split('<table class="props" id="properties">')[1].split(
        '<details class="raw-json"'
    )[0]
    keys = re.findall(r'<th scope="row">([^<]+)</th>', table)
    assert keys[:4] == ["flags", "beta", "plan", "seats"]  # own keys first, nested one level
    assert keys[-1] == "$current_url"
    assert '<th scope="row">plan</th><td><span class="str">pro</span></td>' in html
    assert '<th scope="row">seats</th><td><code class="lit">3</code></td>' in html
    json_block = html.split('<details class="raw-json" id="properties-json">')[1]
    assert json_block.startswith('<summary>JSON</summary><pre class="json">')
    assert "&quot;seats&quot;: 3" in json_block.split("</details>")[0]


def test_log_records_sit_under_the_span_they_were_logged_in(posthog_sink: SinkServer) -> None:
    """Log lines exported by posthog-otel's logs export, spans by the stock OTLP exporter and an
    event by the client: one trace page, the log under its span."""
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    import logging
    import warnings

    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from posthog_otel.config import ClientSettings
    from posthog_otel.logs.processor import PosthogLogProcessor

    resource = Resource.create({"service.name": "shop"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(
                endpoint=posthog_sink.url + "/i/v1/traces",
                headers={"Authorization": f"Bearer {KEY}"},
            )
        )
    )
    logs = PosthogLogProcessor(ClientSettings.build(KEY, posthog_sink.url, flush_interval=0.05))
    log_provider = LoggerProvider(resource=resource)
    log_provider.add_log_record_processor(logs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(logger_provider=log_provider)
    logger = logging.getLogger("trace_page.shop")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    tracer = provider.get_tracer("checkout")
    client = posthog_sink.client()
    try:
        with posthog.new_context():
            posthog.identify_context("ada")
            with tracer.start_as_current_span("POST /checkout", kind=trace.SpanKind.SERVER) as root:
                client.capture("checkout_started")
                with tracer.start_as_current_span("charge card"):
                    logger.warning("card needs 3-D Secure")
        assert client.flush(10) and logs.force_flush(10_000)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        client.shutdown(1)
        provider.shutdown()
        log_provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    posthog_sink.wait_for(1, kind="otlp_log", trace_id=trace_id)
    posthog_sink.wait_for(2, kind="otlp_span", trace_id=trace_id)
    html = requests.get(f"{posthog_sink.url}/traces/{trace_id}", timeout=10).text
    rows = {row["id"]: row for row in posthog_sink.events(trace_id=trace_id, status=None)}
    names = [
        (kind, depth, rows[row]["event"] or rows[row]["properties"].get("body"))
        for kind, depth, row in _timeline(html)
    ]
    assert names == [
        ("span", 0, "POST /checkout"),
        ("event", 1, "checkout_started"),
        ("span", 1, "charge card"),
        ("log", 2, "card needs 3-D Secure"),
    ]
    assert '<dd id="trace-logs">1</dd>' in html
    assert "log WARN" in html and "card needs 3-D Secure" in html
