"""``make screenshots``: PNGs of the viewer's main pages, from a sink filled by the demo.

Starts a sink on a free port with a throw-away database, runs ``posthog-otel demo`` against it
(two instrumented services, one scripted session, an exception; their spans go to the sink's
OTLP endpoint too), then opens the pages in headless Chromium at 1400 px and 420 px wide,
checks their layout with the same checks as the browser tests, and writes the PNGs::

    python -m tests.support.screenshots docs/screenshots

Exit status 1 when the demo fails or a page has a layout problem (nothing is written then).
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

from posthog_otel.demo import run as run_demo
from posthog_otel.sink import SinkServer

from .browser import chromium, layout_problems, missing_parts, save_full_page, set_viewport

DESKTOP, PHONE = 1400, 420


def _events(sink: SinkServer, **params: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{sink.url}/api/events", params={"limit": "1000", **params}, timeout=10)
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def pages(sink: SinkServer) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, path, widths) of the pages to picture, found in what the demo sent."""
    events = _events(sink, kind="event")
    crash = next(e for e in events if e["event"] == "$exception")
    order = next(e for e in events if e["event"] == "order_completed")
    return [
        ("events", "/", (DESKTOP, PHONE)),
        ("trace", f"/traces/{crash['trace_id']}", (DESKTOP, PHONE)),
        ("trace-checkout", f"/traces/{order['trace_id']}", (DESKTOP,)),
        ("exception", f"/events/{crash['id']}", (DESKTOP,)),
        ("event", f"/events/{order['id']}", (DESKTOP, PHONE)),
        ("person", f"/person?distinct_id={order['distinct_id']}", (DESKTOP,)),
    ]


def main(argv: list[str]) -> int:
    out_dir = Path(argv[0] if argv else "docs/screenshots")
    missing = missing_parts()
    if missing:
        print(f"screenshots need {', '.join(missing)}", file=sys.stderr)
        return 1
    with (
        tempfile.TemporaryDirectory(prefix="posthog-screenshots-") as tmp,
        SinkServer(port=0, db_path=Path(tmp) / "sink.sqlite3") as sink,
    ):
        log = io.StringIO()
        if run_demo(port=sink.port, out=log) != 0:
            print(log.getvalue(), file=sys.stderr)
            return 1
        sink.wait_for(1, kind="otlp_span")
        shots: list[tuple[Path, bytes]] = []
        problems: list[str] = []
        with chromium() as driver:
            for name, path, widths in pages(sink):
                for width in widths:
                    set_viewport(driver, width)
                    driver.get(sink.url + path)
                    problems += [f"{path} at {width}px: {p}" for p in layout_problems(driver)]
                    target = Path(tmp) / f"{name}-{width}.png"
                    save_full_page(driver, target, max_height=2400)
                    shots.append((out_dir / target.name, target.read_bytes()))
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 1
        out_dir.mkdir(parents=True, exist_ok=True)
        for target, data in shots:
            target.write_bytes(data)
            print(f"{target} ({len(data) // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
