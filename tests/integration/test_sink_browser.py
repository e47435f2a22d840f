"""The sink's viewer in a real headless browser (Debian chromium + chromium-driver, Selenium).

Screenshots land in ``test-artifacts/``. Without chromium these tests skip with the reason;
with ``POSTHOG_OTEL_REQUIRE_BROWSER=1`` (set by CI) they fail instead, so CI cannot pass
without really rendering the pages. ``POSTHOG_OTEL_CHROMIUM`` / ``POSTHOG_OTEL_CHROMEDRIVER``
point at other binaries.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from posthog_otel.sink import SinkServer
from tests.support.sink_helpers import batch, event, post

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = os.environ.get("POSTHOG_OTEL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("POSTHOG_OTEL_CHROMEDRIVER", "/usr/bin/chromedriver")
WAIT = 10.0


class PaymentError(Exception):
    pass


def _missing() -> list[str]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    return missing


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    missing = _missing()
    if missing:
        reason = (
            f"browser tests need {', '.join(missing)}: apt-get install chromium chromium-driver"
        )
        if os.environ.get("POSTHOG_OTEL_REQUIRE_BROWSER") == "1":
            pytest.fail(f"POSTHOG_OTEL_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="posthog-otel-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    # an explicit driver path: Selenium Manager never tries to download anything
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(20)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


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
