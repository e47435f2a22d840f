"""Identity across languages, through a real OpenTelemetry Collector into ``posthog-otel bridge``.

A "browser" calls a Python gateway (Flask, ``PosthogInstrumentor``) with PostHog's headers and
a ``posthog.tag.plan`` baggage member; the gateway tags the request and calls a service written
in another language, which gets the person, session and tags as ``posthog.*`` W3C baggage:

* Java: the JDK's HTTP server under the OpenTelemetry Java agent
  (``otel.java.experimental.span-attributes.copy-from-baggage.include=posthog.*``);
* Go: net/http with ``otelhttp`` and contrib's ``baggagecopy`` span processor;
* Node.js: ``node:http`` with the Node SDK and ``@opentelemetry/baggage-span-processor``.

Each service exports OTLP/HTTP to the Collector (examples/collector/collector.yaml, built by
tests/support/collector.py), whose ``otlphttp`` exporter sends to the bridge, which sends to a
loopback capture server. Every process listens on 127.0.0.1 only. Services are fetched or built
once into ``~/.cache/posthog-otel`` (tests/support/polyglot_peers.py); a missing toolchain
skips its language locally and fails in CI.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from posthog_otel.testing.capture_server import CaptureServer
from tests.support.bridge_proc import running_bridge
from tests.support.collector import RunningCollector, running_collector
from tests.support.polyglot_peers import LANGUAGES, RunningService, running_service
from tests.support.procs import BIN, free_port, start, stop, wait_until_up
from tests.support.waiting import wait_until

Event = dict[str, Any]

# The first run fetches the Java agent and builds the Go service inside the fixtures (.ci/run
# prepares them before the tests, see tests/support/polyglot_peers.py).
pytestmark = pytest.mark.timeout(600)

# What each service's exception looks like: its type, which frames are the app's own code (by
# the service's package, Go's main package or the script's file), and app frames that must show.
EXPECTED: dict[str, dict[str, Any]] = {
    "java": {
        "service": "java-shop",
        "type": "IllegalStateException",
        "is_app": lambda f: f["module"].startswith("com.example.shop."),
        "must_show": {"com.example.shop.Payments.charge", "com.example.shop.ShopServer.fail"},
    },
    "go": {
        "service": "go-shop",
        "type": "wrapError",
        "is_app": lambda f: f["function"].startswith("main."),
        "must_show": {"main.fail"},
    },
    "node": {
        "service": "node-shop",
        "type": "Error",
        "is_app": lambda f: f.get("filename", "").endswith("/otel_service.js"),
        "must_show": {"chargeCard", "handle"},
    },
}


@pytest.fixture(scope="module")
def posthog() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


@pytest.fixture(scope="module")
def collector(posthog: CaptureServer) -> Iterator[RunningCollector]:
    with (
        running_bridge(posthog=posthog.url, token="polyglot") as bridge,
        running_collector(bridge.url, token="polyglot") as collector,
    ):
        yield collector


@pytest.fixture(scope="module")
def gateway(posthog: CaptureServer) -> Iterator[str]:
    port = free_port()
    env = {
        "PORT": str(port),
        "POSTHOG_API_KEY": "phc_gateway",
        "POSTHOG_HOST": posthog.url,
        "OTEL_SERVICE_NAME": "python-gateway",
    }
    proc = start([str(BIN / "python"), "-m", "tests.support.apps.polyglot_gateway"], env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/call?to=http://127.0.0.1:1/", proc)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module", params=LANGUAGES)
def service(
    request: pytest.FixtureRequest, collector: RunningCollector
) -> Iterator[RunningService]:
    with running_service(request.param, traces_url=f"{collector.http_endpoint}/v1/traces") as svc:
        yield svc


def _from(posthog: CaptureServer, distinct_id: str, service: str) -> list[Event]:
    return [
        e
        for e in posthog.events
        if e.get("distinct_id") == distinct_id and e["properties"].get("service.name") == service
    ]


def _frame_name(frame: dict[str, Any]) -> str:
    module = frame.get("module")
    return f"{module}.{frame['function']}" if module else str(frame["function"])


def _assert_in_app_classification(language: str, frames: list[dict[str, Any]]) -> None:
    expected = EXPECTED[language]
    assert [f["in_app"] for f in frames] == [expected["is_app"](f) for f in frames], frames
    assert expected["must_show"] <= {_frame_name(f) for f in frames if f["in_app"]}, frames
    others = [f for f in frames if not f["in_app"]]
    assert others, f"no runtime or library frame in the {language} stack: {frames}"
    if language == "java":
        assert {f["module"].split(".")[0] for f in others} <= {"java", "sun", "com", "io"}, others
        assert any(f["module"].startswith("io.opentelemetry.javaagent.") for f in others), others
    if language == "go":
        assert any(f["function"].startswith("net/http.") for f in others), others
        assert any("@v" in f.get("filename", "") for f in others), others  # module cache
    if language == "node":
        assert any("/node_modules/" in f.get("filename", "") for f in others), others
        assert any(f.get("filename", "").startswith("node:") for f in others), others


def test_browser_identity_reaches_each_language_through_the_collector(
    posthog: CaptureServer, gateway: str, service: RunningService
) -> None:
    language = service.language
    expected = EXPECTED[language]
    person, session = f"browser-{language}-{uuid.uuid4().hex[:8]}", f"session-{language}"
    browser = {
        "X-POSTHOG-DISTINCT-ID": person,
        "X-POSTHOG-SESSION-ID": session,
        "baggage": "posthog.tag.plan=pro",
    }
    answers = {
        path: requests.get(
            f"{gateway}/call", params={"to": f"{service.url}/{path}"}, headers=browser, timeout=30
        ).json()["status"]
        for path in ("checkout", "fail")
    }
    # the JDK's server hangs up when a handler throws (the gateway answers 0 for that)
    assert answers == {"checkout": 200, "fail": 0 if language == "java" else 500}
    name = str(expected["service"])

    def arrived() -> list[Event]:
        events = _from(posthog, person, name)
        names = {e["event"] for e in events}
        calls = _from(posthog, person, "python-gateway")
        done = {"GET /checkout", "GET /fail", "$exception"} <= names and len(calls) >= 2
        return events if done else []

    wait_until(arrived, timeout=60, what=f"{language} events", procs=[service.proc])
    time.sleep(2.5)  # anything sent twice would arrive within the Collector's and bridge's flushes
    events = _from(posthog, person, name)
    for event in events:
        props = event["properties"]
        assert props["$session_id"] == session, event
        assert props["plan"] == "pro" and props["gateway"] == "python", event
    exceptions = [e for e in events if e["event"] == "$exception"]
    assert len(exceptions) == 1, exceptions
    assert exceptions[0]["properties"]["$exception_list"][0]["mechanism"]["handled"] is False
    # the gateway's own: only the Java hang-up, a handled ConnectionError on its CLIENT span
    gateway_exceptions = [
        e["properties"]["$exception_list"][0]
        for e in posthog.events
        if e.get("distinct_id") == person and e["event"] == "$exception" and e not in exceptions
    ]
    if language == "java":
        [hang_up] = gateway_exceptions
        assert (hang_up["type"], hang_up["mechanism"]["handled"]) == ("ConnectionError", True)
    else:
        assert gateway_exceptions == []
    [entry] = exceptions[0]["properties"]["$exception_list"]
    assert entry["type"] == expected["type"], entry
    _assert_in_app_classification(language, entry["stacktrace"]["frames"])
    # the service's spans continue the gateway's trace
    gateway_traces = {
        e["properties"]["$trace_id"] for e in _from(posthog, person, "python-gateway")
    }
    assert len(gateway_traces) == 2 and {e["properties"]["$trace_id"] for e in events} == (
        gateway_traces
    ), (gateway_traces, events)


class _Arrivals:
    """When each event first reached the capture server (polled every 5 ms)."""

    def __init__(self, posthog: CaptureServer) -> None:
        self.posthog = posthog
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            now = time.time()
            for event in self.posthog.events:
                self.seen.setdefault(event["uuid"], now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("service", ["java"], indirect=True)
def test_java_span_to_posthog_event_latency(
    posthog: CaptureServer, service: RunningService, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end from a Java span ending to its event arriving at PostHog, over 50 requests."""
    person = f"latency-{uuid.uuid4().hex[:8]}"
    arrivals = _Arrivals(posthog)
    try:
        traces = []
        for _ in range(50):
            trace_id = uuid.uuid4().hex
            traces.append(trace_id)
            headers = {
                "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
                "baggage": f"posthog.distinct_id={person},posthog.session_id=latency",
            }
            assert requests.get(f"{service.url}/checkout", headers=headers, timeout=10).ok
            time.sleep(0.05)

        def all_arrived() -> list[Event]:
            events = _from(posthog, person, "java-shop")
            return events if len(events) >= 50 else []

        wait_until(all_arrived, timeout=60, what="50 Java events", procs=[service.proc])
        time.sleep(2.5)
    finally:
        arrivals.close()
    events = _from(posthog, person, "java-shop")
    assert sorted(e["properties"]["$trace_id"] for e in events) == sorted(traces)
    latencies = []
    for event in events:
        started = datetime.fromisoformat(event["timestamp"]).timestamp()
        ended = started + event["properties"]["duration_ms"] / 1000
        latencies.append(arrivals.seen[event["uuid"]] - ended)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    with capsys.disabled():
        sys.stderr.write(
            f"\nJava span end -> PostHog event (Java agent -> Collector -> bridge -> capture), "
            f"{len(latencies)} requests: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"max {latencies[-1] * 1000:.0f} ms\n"
        )
    assert latencies[0] > 0 and p99 < 30, latencies
