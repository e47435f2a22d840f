"""Bridge benchmark: OTLP spans/s through ``posthog-otel bridge`` (decode + map + enqueue).

    python -m benchmarks.bridge

Traffic: pre-encoded protobuf ``ExportTraceServiceRequest`` s of 512 spans, 20 attributes each
(identity, session and a tag as ``PosthogSpanProcessor`` stamps them, HTTP attributes on the
roots, the rest plain), in traces of one SERVER root and seven children; gzip off (loopback).
A load generator in this process posts them over keep-alive loopback connections from 8
threads to a bridge in its own process(es): uvicorn, one or two ``--workers``.

(a) Profile, in process: µs per span for each step of the hot path (decode, identity, mapping,
    capture) for ``capture_spans="roots"`` (one event per trace) and ``"all"`` (every span).
(b) Throughput, one worker and two, ``roots`` and ``all``: the bridge's clients drop events
    after counting them (so PostHog's side is not measured); target >= 20,000 spans/s per
    worker.
(c) The same with real delivery: the bridge (``python -m posthog_otel bridge``) sending its
    events to a capture server in another process, ``roots``, one worker.

The machine's other load shows in the figures: each line is one run, not a median.
"""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BATCH = 512
ATTRIBUTES = 20
CONNECTIONS = 8
WARMUP_S = 1.5
MEASURE_S = 6.0


# --------------------------------------------------------------------------- traffic


def encode_batches(count: int = 8, unique: bool = True) -> list[bytes]:
    """``count`` different serialized requests of ``BATCH`` spans (fresh trace ids each).

    ``unique`` (the default, as in real traffic): every trace has its own user, session, URL
    and client address, and no attribute value repeats across spans. Without it, identity and
    HTTP values are the same on every span and child values repeat (the old, flattering body).
    """
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    identity = {
        "posthog.distinct_id": "user-1",
        "posthogDistinctId": "user-1",
        "posthog.session_id": "session-1",
        "sessionId": "session-1",
        "posthog.tag.plan": "pro",
    }
    http_attributes = {
        "http.request.method": "GET",
        "url.path": "/checkout/42",
        "url.scheme": "https",
        "server.address": "shop.internal",
        "http.route": "/checkout/{id}",
        "http.response.status_code": 200,
        "user_agent.original": "Mozilla/5.0",
        "client.address": "10.1.2.3",
    }
    bodies = []
    for round_ in range(count):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("bench")
        made = 0
        while made < BATCH:
            if unique:
                trace_no = round_ * BATCH + made
                user = f"user-{trace_no * 7919 % 1_000_003}@example.com"
                session = f"0190a1b2-c3d4-7e5f-8a9b-{trace_no:012x}"
                identity = {
                    "posthog.distinct_id": user,
                    "posthogDistinctId": user,
                    "posthog.session_id": session,
                    "sessionId": session,
                    "posthog.tag.plan": f"plan-{trace_no % 97}",
                }
                http_attributes = {
                    **http_attributes,
                    "url.path": f"/checkout/{trace_no}?ts={1_700_000_000_000 + trace_no}",
                    "client.address": f"10.{trace_no % 250}.{trace_no // 250 % 250}.7",
                }
            root_attributes: dict[str, Any] = {**identity, **http_attributes}
            for i in range(ATTRIBUTES - len(root_attributes)):
                root_attributes[f"app.field_{i}"] = f"value-{round_}-{made}-{i}"
            with tracer.start_as_current_span(
                "GET /checkout/{id}", kind=SpanKind.SERVER, attributes=root_attributes
            ):
                made += 1
                for child in range(7):
                    if made >= BATCH:
                        break
                    attributes: dict[str, Any] = dict(identity)
                    for i in range(ATTRIBUTES - len(attributes)):
                        if unique:
                            value: Any = (
                                (made * 31 + i) * 1.5 if i % 3 == 0 else f"v{round_}-{made}-{i}"
                            )
                        else:
                            value = i * 1.5 if i % 3 == 0 else f"v{child}-{i}"
                        attributes[f"app.field_{i}"] = value
                    kind = SpanKind.CLIENT if child % 2 else SpanKind.INTERNAL
                    with tracer.start_as_current_span(f"step {child}", kind=kind) as span:
                        span.set_attributes(attributes)
                    made += 1
        spans = exporter.get_finished_spans()
        assert len(spans) == BATCH
        bodies.append(encode_spans(spans).SerializeToString())
        provider.shutdown()
    return bodies


# --------------------------------------------------------------------------- (a) profile


def profile() -> list[str]:
    """µs per span of each hot-path step, best of several rounds."""
    from posthog_otel.client import Client
    from posthog_otel.otlp.decode import decode_traces
    from posthog_otel.otlp.responses import PROTOBUF
    from posthog_otel.spans.mapping import MappingOptions, SpanMapper, identity_from_attributes

    body = encode_batches(1)[0]
    client = Client("phc_bench", transport=CountingTransport())
    lines = []
    for mode in ("roots", "all"):
        mapper = SpanMapper(MappingOptions(capture_spans=mode))
        decoded = decode_traces(body, PROTOBUF, mapper.may_yield)
        events = [event for span in decoded.items for event in mapper.events_for(span)]

        def capture(events: list[Any] = events) -> None:
            for event in events:
                client.capture_raw(
                    event.name,
                    distinct_id=event.distinct_id,
                    properties=event.properties,
                    timestamp=event.timestamp,
                )

        steps: dict[str, Callable[[], object]] = {
            "decode": lambda m=mapper: decode_traces(body, PROTOBUF, m.may_yield),
            "identity": lambda d=decoded: [identity_from_attributes(s.attributes) for s in d.items],
            "map": lambda m=mapper, d=decoded: [m.events_for(s) for s in d.items],
            "capture": capture,
        }
        cost = {name: _best_us_per_span(fn) for name, fn in steps.items()}
        total = cost["decode"] + cost["map"] + cost["capture"]  # map includes identity
        lines.append(
            f"(a) profile, capture_spans={mode}: {len(decoded.items)} of {BATCH} spans decoded in "
            f"full, {len(events)} events; us/span: decode {cost['decode']:.1f}, identity "
            f"{cost['identity']:.1f} + rest of mapping {cost['map'] - cost['identity']:.1f}, "
            f"capture {cost['capture']:.1f}; total {total:.1f} us = "
            f"{1e6 / total:,.0f} spans/s before HTTP"
        )
    return lines


def _best_us_per_span(fn: Callable[[], object], rounds: int = 7, calls: int = 4) -> float:
    best = float("inf")
    fn()
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - started) / calls / BATCH * 1e6)
    return best


# --------------------------------------------------------------------------- (d) decoder choice


def _upb_read(body: bytes) -> int:
    """What the bridge needs from each span, read through opentelemetry-proto's upb classes."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    def value_of(any_value: Any) -> Any:
        kind = any_value.WhichOneof("value")
        return getattr(any_value, kind) if kind else None

    request = ExportTraceServiceRequest.FromString(body)
    count = 0
    for resource_spans in request.resource_spans:
        resource = {kv.key: value_of(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                row = (
                    span.trace_id,
                    span.span_id,
                    span.parent_span_id,
                    span.name,
                    span.kind,
                    span.start_time_unix_nano,
                    span.end_time_unix_nano,
                    span.status.code,
                    span.status.message,
                    {kv.key: value_of(kv.value) for kv in span.attributes},
                    [(e.name, e.time_unix_nano) for e in span.events],
                    resource,
                    scope,
                )
                count += len(row)
    return count


def decoders() -> list[str]:
    """Full decode of every span (``all`` mode): our wire reader vs upb, by body kind."""
    from posthog_otel.otlp.decode import decode_traces
    from posthog_otel.otlp.responses import PROTOBUF
    from posthog_otel.spans.mapping import MappingOptions, SpanMapper

    want = SpanMapper(MappingOptions(capture_spans="all")).may_yield
    lines = []
    for unique in (True, False):
        bodies = encode_batches(2, unique=unique)
        ours = statistics.median(
            _best_us_per_span(lambda b=b: decode_traces(b, PROTOBUF, want)) for b in bodies
        )
        upb = statistics.median(_best_us_per_span(lambda b=b: _upb_read(b)) for b in bodies)
        label = "unique values (realistic)" if unique else "repeating values"
        lines.append(
            f"(d) decode every span, {label}: our reader {ours:.1f} us/span, upb + field reads "
            f"{upb:.1f} us/span, ours/upb {ours / upb:.2f}x"
        )
    return lines


# --------------------------------------------------------------------------- bridge processes


class CountingTransport:
    """A client transport that counts events and drops them (nothing is sent)."""

    def __init__(self) -> None:
        self.count = 0

    def enqueue(self, event: dict[str, Any]) -> bool:
        self.count += 1
        return True

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        return True

    def stats(self) -> dict[str, Any]:
        return {"captured": self.count, "queued": 0, "sent": 0, "dropped_total": 0}


def counting_app() -> Any:
    """uvicorn factory: the bridge app with counting clients (settings from the env)."""
    from posthog_otel.bridge.app import create_app
    from posthog_otel.bridge.settings import SETTINGS_ENV, BridgeSettings
    from posthog_otel.client import Client

    settings = BridgeSettings.from_json(os.environ[SETTINGS_ENV])
    return create_app(settings, lambda key: Client(key, transport=CountingTransport()))


def _serve_counting(argv: list[str]) -> None:
    """``python -m benchmarks.bridge serve PORT WORKERS MODE``."""
    import uvicorn

    from posthog_otel.bridge.settings import SETTINGS_ENV, BridgeSettings

    port, workers, mode = int(argv[0]), int(argv[1]), argv[2]
    settings = BridgeSettings.build(api_key="phc_bench", port=port, capture_spans=mode)
    os.environ[SETTINGS_ENV] = settings.to_json()
    uvicorn.run(
        "benchmarks.bridge:counting_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _process(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def _wait_healthy(port: int, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bridge exited: {proc.communicate()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("bridge did not come up")


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from ``/proc/stat``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def load(
    port: int, bodies: list[bytes], seconds: float, warmup: float, server_pid: int | None = None
) -> dict[str, float]:
    """Post ``bodies`` round-robin from ``CONNECTIONS`` threads; spans/s answered 200, and
    during the timed window: the server's CPU (its whole process tree) per span, this load
    generator's CPU and how busy the machine's CPUs were."""
    from .servers import _cpu_seconds
    stop = threading.Event()
    counting = threading.Event()
    done = [0] * CONNECTIONS
    failures = [0] * CONNECTIONS
    headers = {"Content-Type": "application/x-protobuf"}

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = index
        while not stop.is_set():
            body = bodies[i % len(bodies)]
            i += 1
            try:
                conn.request("POST", "/v1/traces", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                failures[index] += 1
                continue
            if counting.is_set():
                if response.status == 200:
                    done[index] += 1
                else:
                    failures[index] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    counting.set()
    started = time.perf_counter()
    server_cpu = _cpu_seconds(server_pid) if server_pid else 0.0
    own_cpu, machine = time.process_time(), _machine_busy()
    time.sleep(seconds)
    counted = sum(done)
    elapsed = time.perf_counter() - started
    server_cpu = (_cpu_seconds(server_pid) if server_pid else 0.0) - server_cpu
    own_cpu = time.process_time() - own_cpu
    busy, total = (a - b for a, b in zip(_machine_busy(), machine, strict=True))
    stop.set()
    for thread in threads:
        thread.join(30)
    spans = max(1, counted * BATCH)
    return {
        "spans_per_s": counted * BATCH / elapsed,
        "failures": float(sum(failures)),
        "server_us_per_span": 1e6 * server_cpu / spans,
        "server_cpus": server_cpu / elapsed,
        "load_cpus": own_cpu / elapsed,
        "machine_busy": busy / total if total else 0.0,
    }


def throughput(workers: int, mode: str, bodies: list[bytes]) -> dict[str, float]:
    port = _free_port()
    args = [sys.executable, "-m", "benchmarks.bridge", "serve", str(port), str(workers), mode]
    with _process(args) as proc:
        _wait_healthy(port, proc)
        return load(port, bodies, MEASURE_S, WARMUP_S, proc.pid)


def delivered(bodies: list[bytes]) -> dict[str, float]:
    """(c): the real bridge command, sending to a capture server in another process."""
    from .core import capture_server_process, server_stats

    port = _free_port()
    with capture_server_process() as url:
        env = {"POSTHOG_API_KEY": "phc_bench", "POSTHOG_HOST": url}
        args = [sys.executable, "-m", "posthog_otel", "bridge", "--port", str(port)]
        with _process(args, env) as proc:
            _wait_healthy(port, proc)
            before = server_stats(url)["events"]
            result = load(port, bodies, MEASURE_S, WARMUP_S)
            deadline = time.monotonic() + 30
            expected = result["spans_per_s"] * MEASURE_S / 8  # one event per 8-span trace
            while server_stats(url)["events"] - before < expected and time.monotonic() < deadline:
                time.sleep(0.1)
            result["events"] = float(server_stats(url)["events"] - before)
            return result


def run() -> list[str]:
    lines = decoders() + profile()
    bodies = encode_batches()
    size = statistics.mean(len(body) for body in bodies)
    lines.append(
        f"(b) {BATCH}-span protobuf batches ({size / 1024:.0f} KiB each, {ATTRIBUTES} attributes "
        f"per span), {CONNECTIONS} keep-alive connections from a load generator process, "
        f"{MEASURE_S:.0f} s per line; bridge clients count and drop events"
    )
    for mode in ("roots", "all"):
        one = throughput(1, mode, bodies)
        two = throughput(2, mode, bodies)
        verdict = "meets" if one["spans_per_s"] >= 20_000 else "MISSES"
        lines.append(
            f"    capture_spans={mode}: 1 worker {one['spans_per_s']:,.0f} spans/s "
            f"(target >= 20,000: {verdict}); 2 workers {two['spans_per_s']:,.0f} spans/s "
            f"= {two['spans_per_s'] / one['spans_per_s']:.2f}x"
            + (
                f"; {one['failures'] + two['failures']:.0f} failed requests"
                if one["failures"] or two["failures"]
                else ""
            )
        )
        lines.append(
            "      server CPU per span 1 / 2 workers: "
            f"{one['server_us_per_span']:.1f} / {two['server_us_per_span']:.1f} us; CPUs used by "
            f"the server {one['server_cpus']:.2f} / {two['server_cpus']:.2f}, by the load "
            f"generator {one['load_cpus']:.2f} / {two['load_cpus']:.2f}; machine busy "
            f"{one['machine_busy']:.0%} / {two['machine_busy']:.0%} of {os.cpu_count()} CPUs"
        )
    real = delivered(bodies)
    lines.append(
        f"(c) posthog-otel bridge -> capture server process, capture_spans=roots, 1 worker: "
        f"{real['spans_per_s']:,.0f} spans/s, {real['events']:,.0f} events delivered"
    )
    lines.append(f"    ({os.cpu_count()} CPUs shared by the load generator, bridge and server)")
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        _serve_counting(sys.argv[2:])
    else:
        started = time.perf_counter()
        for line in run():
            print(line, flush=True)
        print(f"({time.perf_counter() - started:.0f} s)")
