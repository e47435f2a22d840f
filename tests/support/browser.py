"""Headless Chromium for the sink's viewer: start it, size the viewport, check the layout, and
take screenshots. Used by tests/integration/test_sink_browser.py and by ``make screenshots``
(tests/support/screenshots.py), so the pictures in the README come from the pages the tests
check.

Needs Debian's chromium + chromium-driver (``/usr/bin/chromium``, ``/usr/bin/chromedriver``;
``POSTHOG_OTEL_CHROMIUM`` / ``POSTHOG_OTEL_CHROMEDRIVER`` point at others) and selenium::

    with chromium() as driver:
        set_viewport(driver, 420)
        driver.get(url)
        assert layout_problems(driver) == []
        save_full_page(driver, Path("page.png"))
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("POSTHOG_OTEL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("POSTHOG_OTEL_CHROMEDRIVER", "/usr/bin/chromedriver")
MIN_FONT_PX = 11.0
WIDTHS = (1400, 420)


def missing_parts() -> list[str]:
    """What is missing to drive the browser (empty when everything is there)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    return missing


@contextlib.contextmanager
def chromium(
    width: int = 1400, height: int = 1000, extra_args: tuple[str, ...] = ()
) -> Iterator[Any]:
    """A headless Chromium driven by chromedriver, with a throw-away profile; the page's console
    is kept for :func:`console_errors`. ``extra_args`` go on Chromium's command line."""
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
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
        *extra_args,
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path: Selenium Manager never tries to download anything
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(20)
    try:
        set_viewport(browser, width, height)
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: Any) -> list[str]:
    """The console's errors (and failed loads) since the last call: each as its message."""
    entries: list[dict[str, Any]] = driver.get_log("browser")
    return [str(e.get("message")) for e in entries if e.get("level") == "SEVERE"]


def set_viewport(driver: Any, width: int, height: int = 1000) -> None:
    """Make the page's viewport exactly ``width`` CSS pixels wide (1 device pixel each)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


_LAYOUT_PROBLEMS = """
var minFont = arguments[0];
var problems = [];
var root = document.documentElement;
if (root.scrollWidth > root.clientWidth) {
  problems.push("page is " + root.scrollWidth + "px wide in a " + root.clientWidth +
                "px viewport (horizontal scrolling)");
}
function describe(el) {
  var text = (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 40);
  var cls = el.getAttribute("class");
  return el.tagName.toLowerCase() + (cls ? "." + cls.split(" ").join(".") : "") +
         " '" + text + "'";
}
function scrolls(el) {
  for (var a = el.parentElement; a && a !== root; a = a.parentElement) {
    var overflow = getComputedStyle(a).overflowX;
    if (overflow !== "visible") { return true; }
  }
  return false;
}
var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
var seen = new Set();
var checked = 0;
while (walker.nextNode()) {
  var node = walker.currentNode;
  if (!node.textContent.trim()) { continue; }
  var el = node.parentElement;
  if (!el || seen.has(el) || el.closest("title, script, style, datalist, option")) { continue; }
  seen.add(el);
  var rect = el.getBoundingClientRect();
  var style = getComputedStyle(el);
  if ((rect.width === 0 && rect.height === 0) || style.visibility === "hidden") { continue; }
  checked += 1;
  var size = parseFloat(style.fontSize);
  var scaleX = 1, scaleY = 1;
  if (el instanceof SVGGraphicsElement) {
    var m = el.getScreenCTM();
    scaleX = Math.hypot(m.a, m.b); scaleY = Math.hypot(m.c, m.d);
    if (Math.abs(scaleX - scaleY) > 0.01 || Math.abs(scaleY - 1) > 0.01) {
      problems.push("stretched text (x" + scaleX.toFixed(2) + ", y" + scaleY.toFixed(2) + "): " +
                    describe(el));
    }
  }
  if (size * Math.min(scaleX, scaleY) < minFont) {
    problems.push("text smaller than " + minFont + "px (" + (size * scaleY).toFixed(1) +
                  "px): " + describe(el));
  }
  for (var a = el; a && a !== root; a = a.parentElement) {
    var t = getComputedStyle(a).transform;
    if (t && t !== "none") { problems.push("transformed text: " + describe(el)); break; }
  }
  if (rect.right > root.clientWidth + 1 && !scrolls(el)) {
    problems.push("text past the right edge (" + Math.round(rect.right) + "px): " + describe(el));
  }
}
if (!checked) { problems.push("no visible text on the page"); }
return problems.slice(0, 25);
"""


def layout_problems(driver: Any, min_font_px: float = MIN_FONT_PX) -> list[str]:
    """What is wrong with the current page's layout: horizontal overflow, text smaller than
    ``min_font_px`` (after any SVG scaling), stretched or transformed text, text cut off at the
    right edge. Empty when the page reads well."""
    problems: list[str] = driver.execute_script(_LAYOUT_PROBLEMS, min_font_px)
    return problems


def save_full_page(driver: Any, path: Path, max_height: int = 4000) -> Path:
    """A PNG of the whole page (not only the viewport), at most ``max_height`` pixels tall."""
    width = int(driver.execute_script("return document.documentElement.clientWidth"))
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, max_height), "scale": 1},
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
