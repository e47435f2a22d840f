"""Scale-out behind a real OpenTelemetry Collector: one stream of traces into one bridge process,
then into two, with ``examples/collector/collector.yaml`` + ``groupbytrace.yaml``.

Topology (what this test runs; the contrib ``loadbalancing`` exporter is not part of the
Collector build here, see README "Scaling out"): services -> Collector (``groupbytrace``, then
``batch`` without a maximum size, so each trace leaves in one request) -> ``otlphttp`` with 4
consumers -> ``posthog-otel bridge --workers N`` (N processes accepting on one socket; the
connections spread over them) -> PostHog. Because a trace never straddles two requests, it never
straddles two bridge processes: a child span's exception takes its root's identity in whichever
process handles it, as with trace-id routing.

Each trace: a SERVER root with the person, 4 CLIENT children; every 10th trace's children are
sent to the Collector in an earlier request than its root, one of them with an exception.
Checked for each N: every root event and every exception arrives exactly once, each exception
with its root's person; with N = 2 both processes took spans. Printed (and in
``test-artifacts/reliability-collector-scaleout.json``): events/s with 1 and 2 processes and
their ratio (medians of interleaved rounds; the first event to the last, so the groupbytrace hold is not counted). On the
2-core test machine the Collector, the load, the capture server and the bridges share the CPUs,
so the ratio is a floor, not a target; it is reported, not asserted.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from posthog_otel.testing.capture_server import CaptureServer
from tests.reliability._report import LONG, write_artifact
from tests.support.bridge_proc import RunningBridge, running_bridge
from tests.support.collector import EXAMPLES, running_collector
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

TRACES = 100_000 if LONG else 30_000
PER_REQUEST = 200  # traces per OTLP request to the Collector
CHILDREN = 4
_FLAGS = 0x101  # sampled, parent is local (OTLP's has-is-remote bit set, is-remote clear)


def _requests(first: int, run: str) -> tuple[bytes, bytes]:
    """(children of every 10th trace, everything else) for PER_REQUEST traces."""
    early, rest = ExportTraceServiceRequest(), ExportTraceServiceRequest()
    scopes = []
    for request in (early, rest):
        resource = request.resource_spans.add()
        resource.resource.attributes.add(key="service.name").value.string_value = "shop"
        scopes.append(resource.scope_spans.add())
    now = time.time_ns()
    for index in range(first, first + PER_REQUEST):
        trace_id, root_id = os.urandom(16), os.urandom(8)
        root = scopes[1].spans.add(
            trace_id=trace_id,
            span_id=root_id,
            name="GET /product",
            kind=Span.SPAN_KIND_SERVER,
            flags=_FLAGS,
            start_time_unix_nano=now,
            end_time_unix_nano=now + 2_000_000,
        )
        root.attributes.add(key="posthog.distinct_id").value.string_value = f"{run}-{index}"
        split = index % 10 == 0
        for child_index in range(CHILDREN):
            child = scopes[0 if split else 1].spans.add(
                trace_id=trace_id,
                span_id=os.urandom(8),
                parent_span_id=root_id,
                name=f"query {child_index}",
                kind=Span.SPAN_KIND_CLIENT,
                flags=_FLAGS,
                start_time_unix_nano=now,
                end_time_unix_nano=now + 100_000,
            )
            child.attributes.add(key="db.system").value.string_value = "postgresql"
            if split and child_index == 0:
                child.status.code = Status.STATUS_CODE_ERROR
                event = child.events.add(name="exception", time_unix_nano=now + 50_000)
                for key, value in (
                    ("exception.type", "DbError"),
                    ("exception.message", f"timeout {index}"),
                ):
                    event.attributes.add(key=key).value.string_value = value
    return early.SerializeToString(), rest.SerializeToString()


def _processes(bridge: RunningBridge) -> dict[int, int]:
    """pid -> spans, from /stats answered by whichever process accepts each new connection."""
    seen: dict[int, int] = {}
    for _ in range(40):
        stats = bridge.stats()
        seen[stats["pid"]] = stats["spans"]
    return seen


def _run(workers: int) -> dict[str, Any]:
    run = f"so{workers}-{os.getpid()}"
    bodies = [_requests(first, run) for first in range(0, TRACES, PER_REQUEST)]
    exceptions_expected = len(range(0, TRACES, 10))
    posthog = CaptureServer(keep_requests=True)
    overlay = [EXAMPLES / "groupbytrace.yaml"]
    with (
        posthog,
        running_bridge("--workers", str(workers), posthog=posthog.url) as bridge,
        running_collector(bridge.url, token=bridge.token, overlays=overlay) as collector,
        requests.Session() as session,
    ):
        for early, rest in bodies:
            for body in (early, rest):
                response = session.post(
                    f"{collector.http_endpoint}/v1/traces",
                    data=body,
                    headers={"Content-Type": "application/x-protobuf"},
                    timeout=30,
                )
                assert response.status_code == 200, response.text
        first = wait_until(lambda: posthog.events and time.monotonic(), timeout=60, what="events")
        total = TRACES + exceptions_expected
        wait_until(
            lambda: len(posthog.events) >= total,
            timeout=240,
            interval=0.1,
            what=lambda: f"{total} events (have {len(posthog.events)})",
            procs=[bridge.proc, collector.proc],
        )
        seconds = time.monotonic() - first
        time.sleep(2)  # anything sent twice would arrive now
        processes = _processes(bridge)
    events = posthog.events
    roots = [e for e in events if e["event"] == "GET /product"]
    exceptions = [e for e in events if e["event"] == "$exception"]
    person_of_trace = {e["properties"]["$trace_id"]: e["distinct_id"] for e in roots}
    assert len(roots) == TRACES and len(set(Counter(e["distinct_id"] for e in roots))) == TRACES
    assert len(exceptions) == exceptions_expected
    assert len({e["uuid"] for e in events}) == len(events)
    strays = [
        e
        for e in exceptions
        if person_of_trace.get(e["properties"]["$trace_id"]) != e["distinct_id"]
    ]
    assert not strays, f"{len(strays)} exceptions without their root's person, e.g. {strays[0]}"
    if workers > 1:
        assert len(processes) == workers and all(processes.values()), processes
    return {
        "events": len(events),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(events) / seconds),
    }


def test_two_bridge_processes_share_one_stream_without_loss_or_duplicates() -> None:
    # Interleaved rounds (1, 2, 2, 1 processes): load from elsewhere on the machine hits both.
    rounds: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for workers in (1, 2, 2, 1):
        rounds[workers].append(_run(workers))
    rate = {n: statistics.median(r["events_per_s"] for r in runs) for n, runs in rounds.items()}
    figures = {
        "traces": TRACES,
        "spans": TRACES * (1 + CHILDREN),
        "one_process": rounds[1],
        "two_processes": rounds[2],
        "events_per_s_one": rate[1],
        "events_per_s_two": rate[2],
        "ratio_two_vs_one": round(rate[2] / rate[1], 2),
    }
    write_artifact("collector-scaleout", figures)
