"""Back-pressure end to end: PostHog down, or slow, for 30 s while 50,000 spans flow through a
real OpenTelemetry Collector (``examples/collector/collector.yaml``) into ``posthog-otel bridge``.

Down: the capture server stops listening. The bridge's queue toward PostHog fills, it answers
429 with ``Retry-After``, the Collector's ``sending_queue`` keeps the batches and
``retry_on_failure`` sends them again; the bridge's sender retries its own upload
(``--max-retries``, default 10: 2.5 to 3 minutes of backoff) instead of dropping it.

Slow: the capture server answers every request 2 s late (each one still succeeds). The bridge
drains its queue at one 2-second request at a time, fills up, and pushes back with 429 the same
way; nothing times out (the bridge's sender waits longer than 2 s).

Either way, after PostHog is back to normal every span that became an event arrives exactly once.
The bridge runs with ``--max-queue-size 5000`` so that its queue is far smaller than the flow:
the trouble has to be ridden out by the Collector, not by the bridge's memory.

Figures (printed, and in ``test-artifacts/reliability-collector-backpressure.json`` /
``reliability-collector-slow-posthog.json``): events lost and duplicated, 429 answers, seconds
from PostHog's return to the last event (and, when slow, the requests that were delayed).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from posthog_otel.testing.capture_server import CaptureServer, Fault
from tests.reliability._report import write_artifact
from tests.support.bridge_proc import RunningBridge, running_bridge
from tests.support.collector import RunningCollector, running_collector
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

SPANS = 50_000
PER_REQUEST = 1_000
OUTAGE_SECONDS = 30.0
SLOW_ANSWER_SECONDS = 2.0  # every capture request answered this late while PostHog is slow


def _export_request(first: int, run: str) -> bytes:
    """PER_REQUEST SERVER root spans, each its own trace and person: one event each."""
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.add(key="service.name").value.string_value = "load"
    scope = resource.scope_spans.add()
    now = time.time_ns()
    for index in range(first, first + PER_REQUEST):
        span = scope.spans.add(
            trace_id=os.urandom(16),
            span_id=os.urandom(8),
            name="GET /item",
            kind=Span.SPAN_KIND_SERVER,
            flags=0x101,
            start_time_unix_nano=now,
            end_time_unix_nano=now + 1_000_000,
        )
        span.attributes.add(key="posthog.distinct_id").value.string_value = f"{run}-{index}"
    return request.SerializeToString()


def _send(collector: RunningCollector, run: str) -> None:
    with requests.Session() as session:
        for first in range(0, SPANS, PER_REQUEST):
            response = session.post(
                f"{collector.http_endpoint}/v1/traces",
                data=_export_request(first, run),
                headers={"Content-Type": "application/x-protobuf"},
                timeout=30,
            )
            assert response.status_code == 200, response.text  # the Collector holds it


def _await_everything(
    posthog: CaptureServer, bridge: RunningBridge, collector: RunningCollector, run: str
) -> dict[str, Any]:
    """Wait for every event after PostHog's return; the loss/duplicate figures."""
    up_at = time.monotonic()

    def people() -> Counter[str]:
        return Counter(
            e["distinct_id"] for e in posthog.events if str(e["distinct_id"]).startswith(f"{run}-")
        )

    wait_until(
        lambda: len(people()) >= SPANS,
        timeout=240,
        what=lambda: f"{SPANS} events (have {len(people())})",
        procs=[bridge.proc, collector.proc],
    )
    recovered = time.monotonic() - up_at
    time.sleep(3)  # anything sent twice would arrive now
    after = bridge.stats()
    events = [e for e in posthog.events if str(e["distinct_id"]).startswith(f"{run}-")]
    per_person = Counter(e["distinct_id"] for e in events)
    uuids = Counter(e["uuid"] for e in events)
    return {
        "spans": SPANS,
        "events": len(events),
        "lost": SPANS - len(per_person),
        "duplicated": len(events) - len(per_person),
        "duplicate_uuids": sum(n - 1 for n in uuids.values()),
        "bridge_429_answers": after["throttled_requests"],
        "bridge_sent": after["sent"],
        "bridge_dropped": after["dropped"],
        "seconds_to_recover": round(recovered, 1),
    }


def _assert_exactly_once(figures: dict[str, Any]) -> None:
    assert figures["lost"] == 0, figures
    assert figures["duplicated"] == 0 and figures["duplicate_uuids"] == 0, figures
    assert figures["bridge_dropped"] == 0 and figures["bridge_sent"] == SPANS, figures


def test_posthog_down_for_30s_under_50k_spans_loses_and_duplicates_nothing() -> None:
    run = f"bp{os.getpid()}"
    posthog = CaptureServer()
    with (
        posthog,
        running_bridge("--max-queue-size", "5000", posthog=posthog.url) as bridge,
        running_collector(bridge.url, token=bridge.token) as collector,
    ):
        posthog.down()
        down_at = time.monotonic()
        _send(collector, run)
        wait_until(
            lambda: bridge.stats()["throttled_requests"] > 0,
            timeout=OUTAGE_SECONDS,
            what="the bridge answering 429",
        )
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        during = bridge.stats()
        assert during["sent"] == 0 and during["dropped"] == 0, during
        posthog.up()
        figures = {"outage_s": OUTAGE_SECONDS, **_await_everything(posthog, bridge, collector, run)}
    write_artifact("collector-backpressure", figures)
    _assert_exactly_once(figures)


@contextmanager
def _slow(posthog: CaptureServer, seconds: float) -> Iterator[list[int]]:
    """Every request to ``posthog`` is answered ``seconds`` late until the block ends; yields a
    one-item list that holds, at the end, how many requests were delayed."""
    stop = threading.Event()
    delayed = [0]
    queued = 0

    def keep_stalling() -> None:
        nonlocal queued
        while not stop.is_set():
            if len(posthog.faults) < 16:
                posthog.fail_next(*[Fault(stall=seconds)] * 16)
                queued += 16
            stop.wait(0.02)

    thread = threading.Thread(target=keep_stalling, daemon=True)
    thread.start()
    try:
        yield delayed
    finally:
        stop.set()
        thread.join()
        left = len(posthog.faults)
        posthog.faults.clear()  # back to normal speed
        delayed[0] = queued - left


def test_posthog_slow_for_30s_under_50k_spans_loses_and_duplicates_nothing() -> None:
    run = f"slow{os.getpid()}"
    posthog = CaptureServer()
    with (
        posthog,
        running_bridge("--max-queue-size", "5000", posthog=posthog.url) as bridge,
        running_collector(bridge.url, token=bridge.token) as collector,
    ):
        with _slow(posthog, SLOW_ANSWER_SECONDS) as delayed:
            slow_at = time.monotonic()
            _send(collector, run)
            wait_until(
                lambda: bridge.stats()["throttled_requests"] > 0,
                timeout=OUTAGE_SECONDS,
                what="the bridge answering 429",
            )
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - slow_at)))
            during = bridge.stats()
        assert 0 < during["sent"] < SPANS and during["dropped"] == 0, during
        figures = {
            "slow_s": OUTAGE_SECONDS,
            "answer_delay_s": SLOW_ANSWER_SECONDS,
            "delayed_requests": delayed[0],
            "sent_while_slow": during["sent"],
            "capture_requests_abandoned": posthog.abandoned,  # bridge gave up waiting: 0 expected
            **_await_everything(posthog, bridge, collector, run),
        }
    write_artifact("collector-slow-posthog", figures)
    assert figures["delayed_requests"] > 0, figures
    _assert_exactly_once(figures)
