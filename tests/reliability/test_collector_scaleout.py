"""Scale-out behind a real OpenTelemetry Collector: one stream of traces, routed by trace id by the
``loadbalancing`` exporter, into one bridge process, then into two separate ones.

Topology (``examples/collector/loadbalancing.yaml`` in front; each backend Collector runs
``collector.yaml`` + ``groupbytrace.yaml``, all unchanged)::

    load --OTLP/HTTP--> Collector (loadbalancing, routing_key traceID, static resolver)
                           |--OTLP/gRPC--> Collector A (groupbytrace, batch) --otlphttp--> bridge A
                           '--OTLP/gRPC--> Collector B (groupbytrace, batch) --otlphttp--> bridge B
                                                                bridges A and B --> PostHog

The ``loadbalancing`` exporter (contrib v0.160.0) speaks OTLP/gRPC only, and the bridge takes
OTLP/HTTP, hence one Collector in front of each bridge. With one bridge the same front Collector
routes to a one-entry ring (one backend Collector, one bridge), so only the count changes.

Each trace: a SERVER root with the person, 4 CLIENT children; every 10th trace's children are
sent to the front Collector in an earlier request than its root, one of them with an exception.
Checked for each round: every root event and every exception arrives exactly once (uuids
counted), each exception with its root's person (the trace stayed on one bridge: the root and
the child met in one backend's groupbytrace, hence in one request to one bridge); with two
bridges, both took spans and together exactly the spans sent. Printed (and in
``test-artifacts/reliability-collector-scaleout.json``): events/s with one and two bridges and
their ratio (medians of interleaved rounds 1, 2, 2, 1, 1, 2; from the first event to the last,
so the groupbytrace hold is not counted) and the split of spans between the bridges. On the
2-core test machine the three Collectors, the load, the capture server and the bridges share the
CPUs, so the ratio is a floor, not a target; it is reported, not asserted.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from contextlib import ExitStack
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from posthog_otel.testing.capture_server import CaptureServer
from tests.reliability._report import LONG, write_artifact
from tests.support.bridge_proc import running_bridge
from tests.support.collector import EXAMPLES, running_collector
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

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


def _run(bridges: int) -> dict[str, Any]:
    run = f"lb{bridges}-{os.getpid()}"
    bodies = [_requests(first, run) for first in range(0, TRACES, PER_REQUEST)]
    exceptions_expected = len(range(0, TRACES, 10))
    posthog = CaptureServer(keep_requests=True)
    with ExitStack() as stack:
        stack.enter_context(posthog)
        tier = []
        for _ in range(bridges):
            bridge = stack.enter_context(running_bridge(posthog=posthog.url))
            backend = stack.enter_context(
                running_collector(
                    bridge.url, token=bridge.token, overlays=[EXAMPLES / "groupbytrace.yaml"]
                )
            )
            tier.append((bridge, backend))
        front = stack.enter_context(
            running_collector(
                "",
                config=EXAMPLES / "loadbalancing.yaml",
                env={"BRIDGE_TIER": "[" + ", ".join(b.grpc_endpoint for _, b in tier) + "]"},
            )
        )
        session = stack.enter_context(requests.Session())
        for early, rest in bodies:
            for body in (early, rest):
                response = session.post(
                    f"{front.http_endpoint}/v1/traces",
                    data=body,
                    headers={"Content-Type": "application/x-protobuf"},
                    timeout=30,
                )
                assert response.status_code == 200, response.text
        first = wait_until(lambda: posthog.events and time.monotonic(), timeout=60, what="events")
        total = TRACES + exceptions_expected
        procs = [front.proc] + [p for b, c in tier for p in (b.proc, c.proc)]
        wait_until(
            lambda: len(posthog.events) >= total,
            timeout=300,
            interval=0.1,
            what=lambda: f"{total} events (have {len(posthog.events)})",
            procs=procs,
        )
        seconds = time.monotonic() - first
        time.sleep(2)  # anything sent twice would arrive now
        spans_per_bridge = [bridge.stats()["spans"] for bridge, _ in tier]
    events = posthog.events
    roots = [e for e in events if e["event"] == "GET /product"]
    exceptions = [e for e in events if e["event"] == "$exception"]
    person_of_trace = {e["properties"]["$trace_id"]: e["distinct_id"] for e in roots}
    assert len(roots) == TRACES and len(set(Counter(e["distinct_id"] for e in roots))) == TRACES
    assert len(exceptions) == exceptions_expected
    assert len({e["uuid"] for e in events}) == len(events), "an event arrived twice"
    strays = [
        e
        for e in exceptions
        if person_of_trace.get(e["properties"]["$trace_id"]) != e["distinct_id"]
    ]
    assert not strays, f"{len(strays)} exceptions without their root's person, e.g. {strays[0]}"
    assert all(spans_per_bridge), spans_per_bridge
    assert sum(spans_per_bridge) == TRACES * (1 + CHILDREN), spans_per_bridge
    return {
        "events": len(events),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(events) / seconds),
        "spans_per_bridge": spans_per_bridge,
    }


def test_two_bridges_behind_the_loadbalancing_exporter_share_one_stream() -> None:
    # Interleaved rounds (1, 2, 2, 1, 1, 2 bridges): load from elsewhere on the machine hits both.
    rounds: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for bridges in (1, 2, 2, 1, 1, 2):
        rounds[bridges].append(_run(bridges))
    rate = {n: statistics.median(r["events_per_s"] for r in runs) for n, runs in rounds.items()}
    figures = {
        "traces": TRACES,
        "spans": TRACES * (1 + CHILDREN),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "one_bridge": rounds[1],
        "two_bridges": rounds[2],
        "events_per_s_one": rate[1],
        "events_per_s_two": rate[2],
        "ratio_two_vs_one": round(rate[2] / rate[1], 2),
    }
    write_artifact("collector-scaleout", figures)
