"""Hostile-input benchmark: what the worst inputs cost, and what leaks.

    python -m benchmarks hostile

(a) Bridge: CPU seconds per MiB of request body through the bridge's pipeline (decode, map,
    enqueue; in process, ``capture_spans="all"``) for hostile bodies: 4 MiB of empty spans,
    spans with 4,000-digit JSON numbers, exception events with adversarial stack text, and a
    normal batch for comparison. The worst is the figure; each request also keeps to the
    pipeline's time budget (``MAP_BUDGET_SECONDS``).
(b) Stack-text parsing: the slowest adversarial family, µs per KiB of text (256 KiB inputs).
(c) Memory: peak RSS growth of a process capturing 2,000 events of 200 KiB while PostHog
    never answers: with the default ``max_queue_bytes`` (64 MiB), and bounded by count only
    (``max_queue_bytes`` set far above, as before the byte bound).
(d) Egress: the outbound matrix of ``tests/support/egress_matrix.py`` (6 HTTP client paths x
    {our instrumentors on, off} x {sampled, unsampled, no tracer provider} x {contrib on,
    off}, ``OTEL_PROPAGATORS=tracecontext,baggage,posthog``): requests to a third-party name
    that carried any PostHog identity, out of all such requests, and requests to a target that
    carried it while our instrumentors were on.

Targets: (a) bounded (linear in size, and cut at the time budget); (c) under ~2x the bound;
(d) 0 leaks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def _wrap(tag: int, payload: bytes) -> bytes:
    size, out = len(payload), bytearray([tag])
    while size > 0x7F:
        out.append(size & 0x7F | 0x80)
        size >>= 7
    return bytes(out) + bytes([size]) + payload


def _bodies() -> dict[str, tuple[bytes, str]]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from posthog_otel.otlp.responses import JSON, PROTOBUF

    empty = _wrap(0x0A, _wrap(0x12, b"\x12\x00" * (2 * MIB - 16)))
    spans = [
        {
            "traceId": "01" * 16,
            "spanId": f"{i + 1:016x}",
            "name": "GET /",
            "kind": 2,
            "attributes": [
                {"key": "user.id", "value": {"stringValue": "u"}},
                {"key": "n", "value": {"doubleValue": "BIG"}},
                {"key": "m", "value": {"intValue": "BIG"}},
            ],
        }
        for i in range(400)
    ]
    document = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    numbers = document.replace('"BIG"', "9" * 4000).encode()

    # a JVM header with a 60,000-character dotted type name, then frames with no end
    stack = (
        "a" + ".a" * 30000 + ": y\n" + ("\tat " + "a." * 2000 + "(\n") * 30 + "\tat a.b(C.java:1)"
    )
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for index in range(16):
        span = scope.spans.add(
            trace_id=os.urandom(16), span_id=(index + 1).to_bytes(8, "big"), name="job", kind=1
        )
        event = span.events.add(name="exception")
        event.attributes.add(key="exception.stacktrace").value.string_value = stack
    stacks = request.SerializeToString()

    normal = ExportTraceServiceRequest()
    scope = normal.resource_spans.add().scope_spans.add()
    for index in range(512):
        span = scope.spans.add(
            trace_id=os.urandom(16), span_id=(index + 1).to_bytes(8, "big"), name="GET /", kind=2
        )
        for number in range(20):
            span.attributes.add(key=f"attr.{number}").value.string_value = f"value {number}"
        span.attributes.add(key="user.id").value.string_value = "u"
    return {
        "4 MiB of empty spans (protobuf)": (empty, PROTOBUF),
        "400 spans with 4,000-digit numbers (JSON)": (numbers, JSON),
        "16 exception events with adversarial stack text": (stacks, PROTOBUF),
        "512 ordinary spans, 20 attributes (protobuf)": (normal.SerializeToString(), PROTOBUF),
    }


def _bridge_cpu() -> list[str]:
    from posthog_otel.bridge.pipeline import MAP_BUDGET_SECONDS, Pipeline
    from posthog_otel.bridge.settings import BridgeSettings
    from posthog_otel.client import Client

    pipeline = Pipeline(BridgeSettings.build(api_key="phc_bench", capture_spans="all"))
    lines = ["(a) bridge pipeline, CPU per MiB of body (capture_spans=all):"]
    worst = 0.0
    for name, (body, kind) in _bodies().items():
        client = Client("phc_bench", "http://127.0.0.1:9", max_queue_size=1_000_000)
        started = time.thread_time()  # this thread's CPU: the sender's retries are not counted
        outcome = pipeline.process("traces", body, kind, client)
        cpu = time.thread_time() - started
        client.shutdown(0)
        per_mib = cpu / (len(body) / MIB)
        if "ordinary" not in name:
            worst = max(worst, per_mib)
        lines.append(
            f"  {name}: {len(body) / MIB:.2f} MiB, {cpu:.2f} s CPU = {per_mib:.2f} s/MiB "
            f"(status {outcome.status}, {outcome.rejected} rejected)"
        )
    lines.append(
        f"  worst hostile body: {worst:.2f} s CPU per MiB (budget per request: "
        f"{MAP_BUDGET_SECONDS:g} s)"
    )
    return lines


def _parsing() -> list[str]:
    from posthog_otel.errors import exception_list_from_stacktrace
    from tests.reliability.test_linear_parsing import FAMILIES, SIZE

    worst_name, worst = "", 0.0
    for name, make in FAMILIES.items():
        text = make(SIZE - 4096)
        started = time.perf_counter()
        exception_list_from_stacktrace(text)
        per_kib = (time.perf_counter() - started) / (len(text) / 1024)
        if per_kib > worst:
            worst_name, worst = name, per_kib
    return [
        f"(b) stack-text parsing, slowest of {len(FAMILIES)} adversarial families at 252 KiB: "
        f"{worst * 1e6:.0f} µs per KiB ({worst_name})"
    ]


def _memory() -> list[str]:
    from posthog_otel.testing.capture_server import CaptureServer, Fault

    lines = ["(c) peak RSS growth, 2,000 events x 200 KiB, PostHog never answering:"]
    with CaptureServer(keep_requests=False) as server:
        server.fail_next(*[Fault(stall=60.0)] * 10_000)
        for label, bound in (
            ("max_queue_bytes=64 MiB (default)", 0),
            ("count bound only (max_queue_size=10,000)", 64 * 1024 * MIB),
        ):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tests.reliability._hanging_child",
                    server.url,
                    "2000",
                    "200",
                    str(bound),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
            )
            result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            lines.append(
                f"  {label}: +{result['peak_growth_kib'] / 1024:.0f} MiB, "
                f"{result['queued_at_end']} queued, dropped {result['dropped']}"
            )
    return lines


def _egress() -> list[str]:
    from tests.support.egress_matrix import THIRD_PARTY, TRACERS, leaked

    env = {**os.environ, "OTEL_PROPAGATORS": "tracecontext,baggage,posthog"}
    third = leaks = target_ours = delivered = 0
    for tracer in TRACERS:
        for contrib in (False, True):
            command = [sys.executable, "-m", "tests.support.egress_matrix", "--tracer", tracer]
            done = subprocess.run(
                command + (["--contrib"] if contrib else []),
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            for line in done.stdout.splitlines():
                case = json.loads(line)
                if case["destination"] == THIRD_PARTY:
                    third += 1
                    leaks += bool(leaked(case["headers"]))
                elif case["ours"]:
                    target_ours += 1
                    delivered += bool(case["headers"].get("x-posthog-distinct-id"))
    return [
        f"(d) egress matrix: {leaks} of {third} third-party requests carried PostHog identity; "
        f"{delivered} of {target_ours} target requests (our instrumentors on) carried it"
    ]


def run() -> list[str]:
    lines = _bridge_cpu()
    lines += _parsing()
    lines += _memory()
    lines += _egress()
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
