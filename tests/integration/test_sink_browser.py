"""The sink's viewer in a real headless browser (Debian chromium + chromium-driver, Selenium).

Every page is also checked at 1400 px and 420 px wide: no horizontal scrolling, no text under
11 px, no stretched or transformed text (:mod:`tests.support.browser`, which ``make
screenshots`` uses too). Screenshots land in ``test-artifacts/``. Without chromium these tests skip with the reason;
with ``POSTHOG_OTEL_REQUIRE_BROWSER=1`` (set by CI) they fail instead, so CI cannot pass
without really rendering the pages. ``POSTHOG_OTEL_CHROMIUM`` / ``POSTHOG_OTEL_CHROMEDRIVER``
point at other binaries.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from posthog_otel.sink import SinkServer
from tests.support.browser import (
    WIDTHS,
    chromium,
    layout_problems,
    missing_parts,
    save_full_page,
    set_viewport,
)
from tests.support.sink_helpers import KEY, batch, event, post

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT = 10.0


class PaymentError(Exception):
    pass


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
def driver(browser: Any) -> Any:
    """The browser with a 1400 px wide viewport."""
    set_viewport(browser, 1400)
    return browser


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SinkServer]:
    with SinkServer(port=0, db_path=tmp_path_factory.mktemp("sink") / "browser.sqlite3") as server:
        yield server


@pytest.fixture
def fresh(sink: SinkServer) -> SinkServer:
    requests.delete(sink.url + "/api/events", timeout=10)
    return sink


def _screenshot(browser: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 1000
    return path


def _wait(browser: Any, condition: Callable[[Any], Any], message: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT).until(condition, message)


_READ_ROWS = """
return Array.from(document.querySelectorAll("#event-rows tr[data-id]")).map(function (row) {
  var cells = row.querySelectorAll("td");
  return {name: cells[1].innerText, person: cells[2].innerText, session: cells[3].innerText,
          details: cells[5].innerText, class: row.className};
});
"""


def _rows(browser: Any) -> list[dict[str, str]]:
    """The list's rows, read in one script call (the live refresh may swap them any time)."""
    rows: list[dict[str, str]] = browser.execute_script(_READ_ROWS)
    return rows


def _checkout(sink: SinkServer) -> None:
    """A small scripted session through the real client: two people, tags, an exception."""
    import posthog_otel as posthog

    client = sink.client()
    for person, session in (("ada", "session-ada"), ("grace", "session-grace")):
        with posthog.new_context():
            posthog.identify_context(person)
            posthog.set_context_session(session)
            posthog.tag("plan", "pro" if person == "ada" else "free")
            client.capture("$pageview", properties={"$current_url": f"http://shop.local/{person}"})
            client.capture("cart_viewed", properties={"items": 2})
            client.capture("checkout_started", properties={"total": 42})
            client.set(properties={"email": f"{person}@example.com"})
    with posthog.new_context():
        posthog.identify_context("ada")
        posthog.set_context_session("session-ada")
        try:
            _charge('{"card": ')
        except PaymentError as exc:
            client.capture_exception(exc)
    assert client.flush(10)
    client.shutdown(1)


def _charge(payload: str) -> None:
    try:
        json.loads(payload)  # library frames (the json package), then ours
    except ValueError as exc:
        raise PaymentError("card declined: unreadable payment payload") from exc


def test_event_list_shows_events_and_refreshes_live(driver: Any, fresh: SinkServer) -> None:
    from selenium.webdriver.common.by import By

    _checkout(fresh)
    driver.get(fresh.url + "/")
    rows = _wait(driver, lambda d: _rows(d) if len(_rows(d)) >= 9 else None, "events listed")
    names = [row["name"] for row in rows]
    assert names[0].startswith("$exception")  # newest first
    for name in ("$pageview", "cart_viewed", "checkout_started", "$set"):
        assert any(n.startswith(name) for n in names), name
    assert {row["person"] for row in rows} == {"ada", "grace"}
    legend = driver.find_element(By.CSS_SELECTOR, "#chart ul.legend").text
    assert "cart_viewed" in legend and "checkout_started" in legend
    assert len(driver.find_elements(By.CSS_SELECTOR, "#chart svg.chart rect")) >= 4
    # a new event appears without reloading the page
    post(fresh.url + "/batch/", batch(event("late_arrival", "linus", timestamp=None)))
    _wait(driver, lambda d: any(r["name"] == "late_arrival" for r in _rows(d)), "live refresh")
    assert driver.execute_script("return performance.getEntriesByType('navigation').length") == 1
    _screenshot(driver, "sink-event-list")


def test_filters_narrow_the_list(driver: Any, fresh: SinkServer) -> None:
    from selenium.webdriver.common.by import By

    _checkout(fresh)
    driver.get(fresh.url + "/")
    _wait(driver, lambda d: len(_rows(d)) >= 9, "events listed")
    box = driver.find_element(By.ID, "filter-distinct_id")
    box.send_keys("grace")
    driver.find_element(By.ID, "apply-filters").click()
    _wait(driver, lambda d: "distinct_id=grace" in d.current_url, "filtered by person")
    rows = _rows(driver)
    assert rows and {row["person"] for row in rows} == {"grace"}
    assert len(rows) == 4
    # filter by event name on top of it
    name_box = driver.find_element(By.ID, "filter-event")
    name_box.send_keys("cart_viewed")
    driver.find_element(By.ID, "apply-filters").click()
    _wait(driver, lambda d: "event=cart_viewed" in d.current_url, "filtered by event")
    assert [row["name"] for row in _rows(driver)] == ["cart_viewed"]
    _screenshot(driver, "sink-filtered")
    # a session link filters by session; the trace filter input works on its own
    driver.find_element(By.ID, "clear-filters").click()
    _wait(driver, lambda d: len(_rows(d)) >= 9, "filters cleared")
    driver.find_element(By.LINK_TEXT, "session-ada").click()
    _wait(driver, lambda d: "session_id=session-ada" in d.current_url, "session filter")
    assert {row["session"] for row in _rows(driver)} == {"session-ada"}
    driver.get(fresh.url + "/?trace_id=" + "0" * 32)
    assert "No events match these filters." in driver.find_element(By.ID, "event-rows").text


def test_exception_page_shows_frames_like_an_error_tracker(driver: Any, fresh: SinkServer) -> None:
    from selenium.webdriver.common.by import By

    _checkout(fresh)
    (crash,) = fresh.events("$exception")
    driver.get(fresh.url + "/")
    _wait(driver, lambda d: len(_rows(d)) >= 9, "events listed")
    driver.find_element(
        By.CSS_SELECTOR, f'#event-rows tr[data-id="{crash["id"]}"] td.name a'
    ).click()
    _wait(driver, lambda d: d.current_url.endswith(f"/events/{crash['id']}"), "exception page")
    heads = [h.text for h in driver.find_elements(By.CSS_SELECTOR, ".exc-head")]
    assert heads[0].startswith("PaymentError: card declined")  # the type as sent, module apart
    assert heads[0].endswith("tests.integration.test_sink_browser")
    assert "JSONDecodeError" in heads[1]
    in_app = driver.find_elements(By.CSS_SELECTOR, "details.frame.in-app")
    assert in_app, "in-app frames are shown"
    assert all(frame.get_attribute("open") is not None for frame in in_app)
    functions = [f.find_element(By.CSS_SELECTOR, ".fn").text for f in in_app]
    assert "_charge" in functions
    current = [
        li.text for li in driver.find_elements(By.CSS_SELECTOR, "details.frame.in-app li.current")
    ]
    assert any("raise PaymentError" in line for line in current)
    assert any("json.loads(payload)" in line for line in current)
    library = driver.find_elements(By.CSS_SELECTOR, "details.library-frames")
    assert library, "library frames are grouped"
    assert all(group.get_attribute("open") is None for group in library)
    hidden = library[0].find_element(By.CSS_SELECTOR, "details.frame.library .fn")
    assert not hidden.is_displayed()
    _screenshot(driver, "sink-exception")
    summary = library[0].find_element(By.TAG_NAME, "summary")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
    summary.click()
    assert hidden.is_displayed()
    _screenshot(driver, "sink-exception-library-frames")
    assert "decode" in hidden.text or "loads" in hidden.text or "raw_decode" in hidden.text


def test_person_page_and_rejected_events(driver: Any, fresh: SinkServer) -> None:
    from selenium.webdriver.common.by import By

    _checkout(fresh)
    post(
        fresh.url + "/batch/",
        batch(event("$exception", "ada", properties={"$exception_type": "E"})),
    )
    driver.get(fresh.url + "/")
    _wait(driver, lambda d: len(_rows(d)) >= 10, "events listed")
    driver.find_element(By.LINK_TEXT, "Rejected").click()
    rows = _wait(
        driver, lambda d: _rows(d) if "status=rejected" in d.current_url else None, "rejected"
    )
    (row,) = rows
    assert "rejected" in row["class"]
    assert "rejected" in row["name"]
    assert "invalid_exception_list" in row["details"]
    _screenshot(driver, "sink-rejected")
    driver.get(fresh.url + "/person?distinct_id=ada")
    assert driver.find_element(By.ID, "person-count").text == "6"
    assert "ada@example.com" in driver.find_element(By.TAG_NAME, "main").text
    _screenshot(driver, "sink-person")


def test_hostile_events_do_not_run_script(driver: Any, fresh: SinkServer) -> None:
    from selenium.webdriver.common.by import By

    name = '<img src=x onerror="window.__xss=1">'
    post(fresh.url + "/batch/", batch(event(name, "<script>window.__xss=2</script>")))
    driver.get(fresh.url + "/")
    _wait(driver, lambda d: len(_rows(d)) == 1, "hostile event listed")
    assert _rows(driver)[0]["name"] == name  # shown as text
    (stored,) = fresh.events()
    driver.get(f"{fresh.url}/events/{stored['id']}")
    assert name in driver.find_element(By.TAG_NAME, "h1").text
    assert driver.execute_script("return window.__xss === undefined")


# --------------------------------------------------------------------------- every page, two widths


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A sink with a bit of everything: the checkout session, an OTLP trace with the events
    captured inside it, a rejected event and long values. Yields the pages' paths by name."""
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    path = tmp_path_factory.mktemp("sink-pages") / "pages.sqlite3"
    with SinkServer(port=0, db_path=path) as server:
        _checkout(server)
        trace_id = _traced_checkout(server)
        long_value = "https://shop.example.com/" + "very-long-path-segment/" * 12
        post(
            server.url + "/batch/",
            batch(event("link_clicked", "ada", properties={"url": long_value, "n": [1, 2, 3]})),
        )
        post(server.url + "/batch/", batch(event("x", "ada", uuid="not-a-uuid")))
        (crash,) = server.events("$exception", trace_id=None)[:1]
        (clicked,) = server.events("link_clicked")
        (span,) = server.events("POST /checkout", kind="otlp_span")
        yield {
            "index": "/",
            "filtered": "/?distinct_id=ada&range=1h",
            "rejected": "/?status=rejected",
            "exception": f"/events/{crash['id']}",
            "event": f"/events/{clicked['id']}",
            "span": f"/events/{span['id']}",
            "person": "/person?distinct_id=ada",
            "trace": f"/traces/{trace_id}",
            "person-not-found": "/person?distinct_id=nobody",
            "trace-not-found": "/traces/" + "0" * 32,
            "url": server.url,
        }


def _traced_checkout(sink: SinkServer) -> str:
    """Spans through the real OTLP exporter, events and an exception through the client."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    import posthog_otel as posthog

    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    exporter = OTLPSpanExporter(
        endpoint=sink.url + "/i/v1/traces", headers={"Authorization": f"Bearer {KEY}"}
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("checkout")
    client = sink.client()
    with posthog.new_context():
        posthog.identify_context("ada")
        posthog.set_context_session("session-ada")
        with tracer.start_as_current_span(
            "POST /checkout", kind=trace.SpanKind.SERVER, attributes={"posthogDistinctId": "ada"}
        ) as root:
            client.capture("checkout_started", properties={"total": 42})
            with tracer.start_as_current_span("charge card") as child:
                try:
                    _charge('{"card": ')
                except PaymentError as exc:
                    child.record_exception(exc)
                    client.capture_exception(exc)
            client.capture("checkout_failed", properties={"reason": "card"})
    assert client.flush(10)
    client.shutdown(1)
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    sink.wait_for(2, kind="otlp_span", trace_id=trace_id)
    return trace_id


_PAGES = [
    ("index", 200),
    ("filtered", 200),
    ("rejected", 200),
    ("exception", 200),
    ("event", 200),
    ("span", 200),
    ("person", 200),
    ("trace", 200),
    ("person-not-found", 404),
    ("trace-not-found", 404),
]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("page", "status"), _PAGES)
def test_every_page_reads_well_wide_and_narrow(
    browser: Any, filled: dict[str, str], page: str, status: int, width: int
) -> None:
    from selenium.webdriver.common.by import By

    url = filled["url"] + filled[page]
    assert requests.get(url, timeout=10).status_code == status
    set_viewport(browser, width)
    browser.get(url)
    heading = browser.find_element(By.TAG_NAME, "h1").text if status == 404 else ""
    assert status == 200 or heading == "Not found"
    problems = layout_problems(browser)
    save_full_page(browser, ARTIFACTS / f"sink-{page}-{width}.png", max_height=3000)
    assert problems == [], f"{page} at {width}px:\n" + "\n".join(problems)


def test_the_checks_catch_a_page_that_does_not_fit(browser: Any, filled: dict[str, str]) -> None:
    """The layout checks can fail: a stretched chart label and a too-wide block are caught."""
    set_viewport(browser, 420)
    browser.get(filled["url"] + "/")
    assert layout_problems(browser) == []
    browser.execute_script(
        "var svg = document.querySelector('svg.chart');"
        "svg.insertAdjacentHTML('beforeend', '<text x=\"10\" y=\"50\">stretched</text>');"
        "var wide = document.createElement('pre'); wide.textContent = 'x'.repeat(400);"
        "document.querySelector('main').appendChild(wide);"
    )
    problems = "\n".join(layout_problems(browser))
    assert "stretched text" in problems and "'stretched'" in problems
    assert "horizontal scrolling" in problems


def test_trace_page_in_the_browser(browser: Any, filled: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    set_viewport(browser, 1400)
    browser.get(filled["url"] + "/")
    _wait(browser, lambda d: len(_rows(d)) >= 10, "events listed")
    link = browser.find_element(By.CSS_SELECTOR, f'td.trace a[href="{filled["trace"]}"]')
    link.click()
    _wait(browser, lambda d: d.current_url.endswith(filled["trace"]), "trace page")
    rows = browser.find_elements(By.CSS_SELECTOR, "#timeline .tl-row[data-kind]")
    kinds = [row.get_attribute("data-kind") for row in rows]
    assert kinds[0] == "span" and kinds.count("span") == 2
    assert "exception" in kinds and "span-exception" in kinds and kinds.count("event") == 2
    assert browser.find_element(By.ID, "trace-person").text == "ada"
    assert browser.find_element(By.ID, "trace-session").text == "session-ada"
    # bars are laid out left to right in time order
    lefts = [row.find_element(By.CSS_SELECTOR, "svg.tl-bar rect").rect["x"] for row in rows]
    assert lefts[0] == min(lefts)
    exception_row = rows[kinds.index("exception")]
    exception_row.find_element(By.CSS_SELECTOR, ".tl-label a").click()
    _wait(browser, lambda d: "/events/" in d.current_url, "exception page from the trace")
    assert browser.find_elements(By.CSS_SELECTOR, ".exc-head")
