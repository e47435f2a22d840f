"""Traces export benchmark: added cost per span of posthog-otel's export to ``/i/v1/traces``
vs OpenTelemetry's own ``BatchSpanProcessor`` + ``OTLPSpanExporter`` to the same endpoint.

    python -m benchmarks.traces

Three providers, each ending rounds of 5,000 spans with 4 attributes, then ``force_flush``;
measured is the process's CPU time (all threads: the background export's encoding, gzip and
HTTP count, and other work on a shared machine does not), medians of interleaved rounds: a bare SDK provider
(no processor), contrib (``BatchSpanProcessor(OTLPSpanExporter(gzip, Bearer))``), and
posthog-otel (``Client.enable_traces``: byte-bounded queue, identity stamping, its own OTLP
protobuf writer, gzip level 1, 413 splitting). Both export to one loopback OTLP receiver in another
process that reads each body and answers 200. Target: our added cost per span <= 1.0x contrib's.
Both queues hold a whole round (neither drops). Also printed: the cost inside an
identified PostHog context, where our processor also stamps ``posthogDistinctId``/``sessionId``
(contrib stamps nothing; with ``PosthogInstrumentor`` the span processor has stamped them
already and the export processor only checks).
"""

from __future__ import annotations

import gc
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as posthog

from ._loopback import otlp_receiver
from ._timing import ratio_line

SPANS = 5_000
QUEUE = 8_192  # both queues hold a whole round: neither drops, both export every span
KEY = "phc_bench"


def _batch(provider: TracerProvider, flush: bool) -> Callable[[], None]:
    tracer = provider.get_tracer("bench")

    def run() -> None:
        for index in range(SPANS):
            with tracer.start_as_current_span(
                "GET /orders/:id",
                attributes={
                    "http.method": "GET",
                    "http.route": "/orders/:id",
                    "http.status_code": 200,
                    "order.index": index,
                },
            ):
                pass
        if flush:
            provider.force_flush(60_000)

    return run


def _cpu_ns(fn: Callable[[], object]) -> float:
    """Process CPU time of ``fn`` (every thread: the export threads' work counts)."""
    gc.collect()
    started = time.process_time_ns()
    fn()
    return float(time.process_time_ns() - started)


def _compare_cpu(contenders: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm up
        fn()
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(_cpu_ns(fn))
    return {name: statistics.median(values) for name, values in samples.items()}


class _CountingExporter:  # a counter shared with the exporter class defined in bench()
    """Counts what contrib's processor hands its exporter (it drops silently when full)."""

    exported = 0


def bench(identified: bool = False, rounds: int = 7) -> dict[str, float]:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    class Counting(OTLPSpanExporter):
        def export(self, spans: Any) -> Any:
            _CountingExporter.exported += len(spans)
            return super().export(spans)

    _CountingExporter.exported = 0
    logging.disable(logging.WARNING)
    try:
        with otlp_receiver() as url:
            bare = TracerProvider()
            contrib = TracerProvider()
            contrib.add_span_processor(
                BatchSpanProcessor(
                    Counting(
                        endpoint=url + "/i/v1/traces",
                        headers={"Authorization": f"Bearer {KEY}"},
                        compression=Compression.Gzip,
                    ),
                    max_queue_size=QUEUE,
                )
            )
            ours = TracerProvider()
            client = posthog.Client(KEY, host=url)
            assert client.enable_traces({"max_queue_size": QUEUE}, tracer_provider=ours)
            with posthog.new_context():
                if identified:  # our processor stamps posthogDistinctId/sessionId (2 attributes)
                    posthog.identify_context("user-1")
                    posthog.set_context_session("session-1")
                result = _compare_cpu(
                    {
                        "bare": _batch(bare, True),
                        "contrib": _batch(contrib, True),
                        "posthog-otel": _batch(ours, True),
                    },
                    rounds,
                )
            stats = client.stats()["traces"]
            client.shutdown(10)
            contrib.shutdown()
            ours.shutdown()
    finally:
        logging.disable(logging.NOTSET)
    per_span = {name: value / SPANS for name, value in result.items()}
    per_span["exported"] = stats["exported"]
    per_span["dropped"] = stats["dropped_total"]
    per_span["contrib_exported"] = _CountingExporter.exported
    return per_span


def run() -> list[str]:
    lines = []
    for identified, label in (
        (False, "(a) per span, CPU of app + export"),
        (True, "(b) per span, CPU of app + export in an identified context (ours stamps 2)"),
    ):
        r = bench(identified)
        bare = r["bare"]
        lines += [
            f"{label}: bare {bare / 1000:.2f} us, contrib BSP+OTLP "
            f"{r['contrib'] / 1000:.2f} us, posthog-otel {r['posthog-otel'] / 1000:.2f} us "
            f"(exported: ours {int(r['exported'])}, dropped {int(r['dropped'])}; "
            f"contrib {int(r['contrib_exported'])})",
            ratio_line(
                "    added cost vs contrib", r["posthog-otel"] - bare, r["contrib"] - bare, 1.0
            ),
        ]
    for line in lines:
        print(line, flush=True)
    return lines


if __name__ == "__main__":
    run()
