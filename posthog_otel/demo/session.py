"""The demo's script: sink, services, a browser session, then the check and the summary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import requests

from .._identity import DISTINCT_ID, SESSION_ID, WINDOW_ID
from .services import exports_logs

__all__ = ["run"]

API_KEY = "phc_demo_local"


@dataclass(frozen=True)
class _Expected:
    event: str
    count: int
    service: str


# What a successful session produces, per event name.
_EXPECTED = (
    _Expected("products_viewed", 1, "shop-api"),
    _Expected("$ai_generation", 1, "shop-api (an LLM call's GenAI span)"),
    _Expected("added_to_cart", 1, "shop-api"),
    _Expected("order_completed", 1, "shop-api"),
    _Expected("receipt_queued", 1, "shop-api (background thread)"),
    _Expected("checkout_failed", 1, "shop-api"),
    _Expected("payment_authorized", 1, "billing"),
    _Expected("$exception", 1, "billing"),
    _Expected("GET /products", 1, "shop-api (request span)"),
    _Expected("POST /cart", 1, "shop-api (request span)"),
    _Expected("POST /checkout", 2, "shop-api (request span)"),
    _Expected("POST /charge", 2, "billing (request span)"),
)


# Spans of a successful session at least (traces=True): a server span per request (4 to the
# shop, 2 to billing) and the LLM call's.
_EXPECTED_SPANS = 7

# The services' log lines of a successful session (exported with logs=True), by service.
_EXPECTED_LOGS = (
    ("listing 3 products", "shop-api"),
    ("added hedgehog-plush to cart cart-42", "shop-api"),
    ("charging order order-7", "shop-api"),
    ("authorized 12.50 for order order-7", "billing"),
    ("charging order order-8", "shop-api"),
    ("card declined for order order-8", "billing"),
    ("billing refused order order-8", "shop-api"),
)


class _Progress:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.steps = 0

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        self.steps += 1
        self.out.write(f"  [{self.steps:>2}] {text} ... ")
        self.out.flush()
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self.out.write("failed\n")
            raise
        self.out.write(f"ok ({time.monotonic() - started:.1f}s)\n")
        self.out.flush()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _running_sink(url: str) -> bool:
    """Is a posthog-otel sink answering at ``url`` (not merely something with a /healthz)?"""
    try:
        health = requests.get(url + "/healthz", timeout=1)
        if not (health.ok and health.json().get("status") == "ok"):
            return False
        listing = requests.get(url + "/api/events", params={"limit": "1"}, timeout=1)
        return listing.ok and isinstance(listing.json().get("events"), list)
    except (requests.RequestException, ValueError, AttributeError):
        return False


@contextmanager
def _sink(port: int, db: str | None, keep: bool) -> Iterator[tuple[str, bool]]:
    """Yield (url, started_here): an existing sink on ``port`` or a new one."""
    if port:
        url = f"http://127.0.0.1:{port}"
        if _running_sink(url):
            yield url, False
            return
    from ..sink import SinkServer

    path = db or os.path.join(tempfile.mkdtemp(prefix="posthog-demo-"), "posthog-sink.sqlite3")
    try:
        sink = SinkServer(port=port, db_path=path)
    except OSError:  # the port is taken by something else
        sink = SinkServer(port=0, db_path=path)
        print(
            f"(port {port} is used by another program; the sink runs on port {sink.port}) ", end=""
        )
    sink.start()
    try:
        yield sink.url, True
        if keep:
            print(f"\n  Viewer running at {sink.url}/ (Ctrl-C to stop)")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    finally:
        sink.stop()


def _start_service(name: str, port: int, sink_url: str, extra: list[str]) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "POSTHOG_API_KEY": API_KEY,
        "POSTHOG_HOST": sink_url,
        "OTEL_SERVICE_NAME": "shop-api" if name == "frontend" else "billing",
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable,
        "-m",
        "posthog_otel.demo.services",
        name,
        "--port",
        str(port),
        *extra,
    ]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_up(url: str, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"service exited early:\n{proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start in {timeout:.0f}s")


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err or ""


def _browse(shop: str, headers: dict[str, str], progress: _Progress) -> None:
    with progress.step("Browser: GET /products"):
        requests.get(shop + "/products", headers=headers, timeout=10).raise_for_status()
    with progress.step("Browser: POST /cart"):
        requests.post(
            shop + "/cart", json={"sku": "hedgehog-plush"}, headers=headers, timeout=10
        ).raise_for_status()
    with progress.step("Browser: POST /checkout (shop -> billing, receipt on a thread)"):
        order = {"order_id": "order-7", "amount": 12.5, "card": "ok"}
        requests.post(
            shop + "/checkout", json=order, headers=headers, timeout=10
        ).raise_for_status()
    with progress.step("Browser: POST /checkout with a declined card (billing raises)"):
        order = {"order_id": "order-8", "amount": 99.0, "card": "declined"}
        answer = requests.post(shop + "/checkout", json=order, headers=headers, timeout=10)
        if answer.status_code != 402:
            raise RuntimeError(f"expected 402 from the shop, got {answer.status_code}")


def _collect(
    sink_url: str, session_id: str, timeout: float, kind: str = "event", wanted: int | None = None
) -> list[dict[str, Any]]:
    wanted = sum(e.count for e in _EXPECTED) if wanted is None else wanted
    deadline = time.monotonic() + timeout
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        answer = requests.get(
            f"{sink_url}/api/events",
            params={"session_id": session_id, "kind": kind, "limit": "1000"},
            timeout=5,
        )
        events = answer.json()["events"]
        if len(events) >= wanted:
            break
        time.sleep(0.2)
    return events


def _check(events: list[dict[str, Any]], distinct_id: str) -> list[str]:
    problems = []
    counts = Counter(e["event"] for e in events)
    for expected in _EXPECTED:
        if counts[expected.event] != expected.count:
            problems.append(
                f"{expected.event}: expected {expected.count}, got {counts[expected.event]}"
            )
    for event in events:
        if event["distinct_id"] != distinct_id:
            problems.append(f"{event['event']} has distinct id {event['distinct_id']!r}")
        if event["status"] != "accepted":
            problems.append(f"{event['event']} was rejected by the sink: {event['reason']}")
    checkout_traces = {
        e["trace_id"] for e in events if e["event"] in ("order_completed", "payment_authorized")
    }
    if len(checkout_traces) != 1:
        problems.append(
            f"the checkout's events should share one trace, saw {sorted(map(str, checkout_traces))}"
        )
    return problems


def _check_logs(
    logs: list[dict[str, Any]], events: list[dict[str, Any]], distinct_id: str
) -> list[str]:
    problems = []
    bodies = Counter(str(r["properties"].get("body")) for r in logs)
    for body, service in _EXPECTED_LOGS:
        if bodies[body] != 1:
            problems.append(f"log {body!r} ({service}): expected 1, got {bodies[body]}")
    for record in logs:
        if record["distinct_id"] != distinct_id or not record["trace_id"]:
            problems.append(
                f"log {record['properties'].get('body')!r} has distinct id "
                f"{record['distinct_id']!r} and trace {record['trace_id']!r}"
            )
    paid = {e["trace_id"] for e in events if e["event"] == "order_completed"}
    charged = {
        r["trace_id"] for r in logs if r["properties"].get("body") == "charging order order-7"
    }
    if paid and charged != paid:
        problems.append("the checkout's log lines should share the trace of its events")
    return problems


def _check_spans(
    spans: list[dict[str, Any]], events: list[dict[str, Any]], distinct_id: str
) -> list[str]:
    problems = []
    if len(spans) < _EXPECTED_SPANS:
        problems.append(f"spans: expected at least {_EXPECTED_SPANS}, got {len(spans)}")
    others = sorted({str(s["distinct_id"]) for s in spans if s["distinct_id"] != distinct_id})
    if others:
        problems.append(f"spans with another distinct id: {others}")
    paid = {e["trace_id"] for e in events if e["event"] == "order_completed"}
    services = {
        str(s["properties"].get("resource", {}).get("service.name"))
        for s in spans
        if s["trace_id"] in paid
    }
    if paid and services != {"shop-api", "billing"}:
        problems.append(f"the checkout's spans should come from both services, saw {services}")
    return problems


def _span_summary(spans: list[dict[str, Any]], out: TextIO) -> None:
    services = Counter(
        str(s["properties"].get("resource", {}).get("service.name", "?")) for s in spans
    )
    shown = ", ".join(f"{name} {count}" for name, count in sorted(services.items()))
    out.write(f"  spans: {len(spans)} ({shown})\n")


def _log_summary(
    logs: list[dict[str, Any]], events: list[dict[str, Any]], sink_url: str, out: TextIO
) -> None:
    services = Counter(
        str(r["properties"].get("resource", {}).get("service.name", "?")) for r in logs
    )
    shown = ", ".join(f"{name} {count}" for name, count in sorted(services.items()))
    out.write(f"  log records: {len(logs)} ({shown})\n")
    for event in events:
        if event["event"] == "order_completed" and event["trace_id"]:
            out.write(
                f"  checkout trace (spans, logs, events): {sink_url}/traces/{event['trace_id']}\n"
            )
            break


def _summary(events: list[dict[str, Any]], out: TextIO) -> None:
    by_name = Counter(e["event"] for e in events)
    services = {e.event: e.service for e in _EXPECTED}
    out.write(f"\n  {'event':<22} {'count':>5}  {'from':<30} traces\n")
    out.write(f"  {'-' * 22} {'-' * 5}  {'-' * 30} ------\n")
    for name, count in sorted(by_name.items()):
        per_name = len({e["trace_id"] for e in events if e["event"] == name})
        out.write(f"  {name:<22} {count:>5}  {services.get(name, '?'):<30} {per_name}\n")
    people = sorted({e["distinct_id"] for e in events})
    sessions = sorted({str(e["session_id"]) for e in events})
    traces = {e["trace_id"] for e in events if e["trace_id"]}
    exceptions = [e for e in events if e["event"] == "$exception"]
    out.write(f"\n  person(s): {', '.join(people)}\n  session(s): {', '.join(sessions)}\n")
    out.write(f"  traces: {len(traces)}\n")
    for exc in exceptions:
        entry = exc["properties"]["$exception_list"][0]
        frames = entry.get("stacktrace", {}).get("frames", [])
        where = f" at {frames[-1]['filename']}:{frames[-1]['lineno']}" if frames else ""
        out.write(f"  exception: {entry['type']}: {entry['value']}{where}\n")


def run(
    port: int = 8010, db: str | None = None, keep: bool = False, out: TextIO = sys.stdout
) -> int:
    """Run the demo; returns the process exit code (0 when every expected event arrived)."""
    distinct_id = "demo-user-1"
    session_id = f"demo-session-{uuid.uuid4().hex[:8]}"
    headers = {  # as posthog-js's tracing headers send them
        DISTINCT_ID.header: distinct_id,
        SESSION_ID.header: session_id,
        WINDOW_ID.header: "demo-window-1",
        "User-Agent": "Mozilla/5.0 (posthog-otel demo)",
    }
    progress = _Progress(out)
    out.write("posthog-otel demo: two instrumented services, one browser session, a local sink\n\n")
    with progress.step("Starting the local sink"):
        sink_context = _sink(port, db, keep)
        sink_url, started_here = sink_context.__enter__()
    try:
        billing_port, shop_port = _free_port(), _free_port()
        billing_url, shop_url = f"http://127.0.0.1:{billing_port}", f"http://127.0.0.1:{shop_port}"
        with progress.step("Starting the billing service and the shop API (2 processes)"):
            billing = _start_service("billing", billing_port, sink_url, [])
            shop = _start_service("frontend", shop_port, sink_url, ["--billing-url", billing_url])
            _wait_up(billing_url, billing)
            _wait_up(shop_url, shop)
        try:
            _browse(shop_url, headers, progress)
        finally:
            with progress.step("Stopping the services (they flush their events)"):
                errors = _stop(shop) + _stop(billing)
        with progress.step("Waiting for the events in the sink"):
            events = _collect(sink_url, session_id, timeout=20)
        with progress.step("Waiting for the spans in the sink (traces=True)"):
            spans = _collect(sink_url, session_id, 20, "otlp_span", _EXPECTED_SPANS)
        logs: list[dict[str, Any]] = []
        if exports_logs():
            with progress.step("Waiting for the log records in the sink"):
                logs = _collect(sink_url, session_id, 20, "otlp_log", len(_EXPECTED_LOGS))
        _summary(events, out)
        problems = _check(events, distinct_id) + _check_spans(spans, events, distinct_id)
        _span_summary(spans, out)
        if exports_logs():
            _log_summary(logs, events, sink_url, out)
            problems += _check_logs(logs, events, distinct_id)
        out.write(f"\n  Viewer: {sink_url}/?session_id={session_id}\n")
        if started_here and not keep:
            out.write(
                "  (this sink stops with the demo: run `posthog-otel sink` first, or use --keep)\n"
            )
        if problems:
            out.write("\nFAILED: " + "; ".join(problems) + "\n")
            if errors.strip():
                out.write("\nservice output:\n" + errors[-4000:] + "\n")
            return 1
        out.write(f"\nOK: all {len(events)} expected events arrived for {distinct_id}\n")
        return 0
    finally:
        sink_context.__exit__(None, None, None)
