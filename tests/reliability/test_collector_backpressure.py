"""Back-pressure end to end: PostHog down for 30 s while 50,000 spans flow through a real
OpenTelemetry Collector (``examples/collector/collector.yaml``) into ``posthog-otel bridge``.

The bridge's queue toward PostHog fills, it answers 429 with ``Retry-After``, the Collector's
``sending_queue`` keeps the batches and ``retry_on_failure`` sends them again; the bridge's
sender retries its own upload (``--max-retries``, default 10: 2.5 to 3 minutes of backoff)
instead of dropping it. After PostHog is back every span that became an event arrives exactly
once. The bridge runs with ``--max-queue-size 5000`` so that its queue is far smaller than the
flow: the outage has to be ridden out by the Collector, not by the bridge's memory.

Figures (printed, and in ``test-artifacts/reliability-collector-backpressure.json``): events
lost and duplicated, 429 answers, seconds from PostHog's return to the last event.
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from posthog_otel.testing.capture_server import CaptureServer
from tests.reliability._report import write_artifact
from tests.support.bridge_proc import running_bridge
from tests.support.collector import running_collector
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

SPANS = 50_000
PER_REQUEST = 1_000
OUTAGE_SECONDS = 30.0


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
        with requests.Session() as session:
            for first in range(0, SPANS, PER_REQUEST):
                response = session.post(
                    f"{collector.http_endpoint}/v1/traces",
                    data=_export_request(first, run),
                    headers={"Content-Type": "application/x-protobuf"},
                    timeout=30,
                )
                assert response.status_code == 200, response.text  # the Collector holds it
        wait_until(
            lambda: bridge.stats()["throttled_requests"] > 0,
            timeout=OUTAGE_SECONDS,
            what="the bridge answering 429",
        )
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
        during = bridge.stats()
        assert during["sent"] == 0 and during["dropped"] == 0, during
        posthog.up()
        up_at = time.monotonic()

        def people() -> Counter[str]:
            return Counter(
                e["distinct_id"]
                for e in posthog.events
                if str(e["distinct_id"]).startswith(f"{run}-")
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
    figures = {
        "spans": SPANS,
        "outage_s": OUTAGE_SECONDS,
        "events": len(events),
        "lost": SPANS - len(per_person),
        "duplicated": len(events) - len(per_person),
        "duplicate_uuids": sum(n - 1 for n in uuids.values()),
        "bridge_429_answers": after["throttled_requests"],
        "bridge_dropped": after["dropped"],
        "seconds_to_recover": round(recovered, 1),
    }
    write_artifact("collector-backpressure", figures)
    assert figures["lost"] == 0, figures
    assert figures["duplicated"] == 0 and figures["duplicate_uuids"] == 0, figures
    assert after["dropped"] == 0 and after["sent"] == SPANS, after
