"""Span benchmarks: PosthogSpanProcessor's per-span cost, and exporter throughput.

    python -m benchmarks.spans

(a) Per span, with identity + session + 5 tags: a bare SDK span (BatchSpanProcessor to a no-op
    exporter) vs the same plus contrib's BaggageSpanProcessor copying the same 7 members from
    baggage vs the same plus PosthogSpanProcessor stamping them from the PostHog scope.
    Targets: our added cost <= 0.5x the baggage processor's; our span <= 1.25x a bare span.
(b) 100,000 spans through PosthogSpanExporter (capture_spans="all") to a loopback capture
    server in another process: spans/s, all delivered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import posthog_otel as posthog

from ._timing import compare, ratio_line
from .core import capture_server_process, server_stats

TAGS = {"plan": "pro", "region": "eu", "cart_items": 3, "beta": True, "ab_group": "B"}


class _NoOpExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _provider(*extra: object) -> TracerProvider:
    provider = TracerProvider()
    for processor in extra:
        provider.add_span_processor(processor)  # type: ignore[arg-type]
    provider.add_span_processor(BatchSpanProcessor(_NoOpExporter(), max_queue_size=1_000_000))
    return provider


def bench_processor() -> dict[str, float]:
    from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor

    from posthog_otel.spans.processor import PosthogSpanProcessor

    client = posthog.Client(disabled=True)
    bare = _provider().get_tracer("bench")
    with_baggage = _provider(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS)).get_tracer("bench")
    with_posthog = _provider(PosthogSpanProcessor(client)).get_tracer("bench")

    ctx = otel_context.get_current()
    for key, value in {"posthog.distinct_id": "user-1", "posthog.session_id": "session-1"}.items():
        ctx = baggage.set_baggage(key, value, ctx)
    for key, value in TAGS.items():
        ctx = baggage.set_baggage(f"posthog.tag.{key}", str(value), ctx)

    def span_bare() -> None:
        with bare.start_as_current_span("work"):
            pass

    def span_baggage() -> None:
        token = otel_context.attach(ctx)
        with with_baggage.start_as_current_span("work"):
            pass
        otel_context.detach(token)

    def span_posthog() -> None:
        with with_posthog.start_as_current_span("work"):
            pass

    with posthog.new_context():
        posthog.identify_context("user-1")
        posthog.set_context_session("session-1")
        for key, value in TAGS.items():
            posthog.tag(key, value)

        # attach/detach of the baggage context is part of the baggage contender; time it alone
        # so it can be subtracted and both contenders pay only for their processor.
        def attach_only() -> None:
            otel_context.detach(otel_context.attach(ctx))

        return compare(
            {
                "bare": span_bare,
                "baggage": span_baggage,
                "posthog": span_posthog,
                "attach": attach_only,
            },
            calls=20_000,
        )


def bench_exporter(count: int = 100_000) -> dict[str, float]:
    from posthog_otel.spans.exporter import PosthogSpanExporter

    logging.disable(logging.WARNING)
    with capture_server_process() as url:
        client = posthog.Client("phc_bench", host=url)
        provider = TracerProvider()
        provider.add_span_processor(
            BatchSpanProcessor(
                PosthogSpanExporter(client, capture_spans="all"), max_queue_size=count
            )
        )
        tracer = provider.get_tracer("bench")
        started = time.perf_counter()
        with posthog.new_context():
            posthog.identify_context("user-1")
            for key, value in TAGS.items():
                posthog.tag(key, value)
            for i in range(count):
                with tracer.start_as_current_span("job", attributes={"job.index": i}):
                    pass
        provider.force_flush(300_000)
        client.flush(300)
        while server_stats(url)["events"] < count and time.perf_counter() - started < 300:
            time.sleep(0.01)
        wall = time.perf_counter() - started
        received = server_stats(url)["events"]
        provider.shutdown()
        client.shutdown(10)
    logging.disable(logging.NOTSET)
    return {"wall_s": wall, "received": received, "spans_per_s": count / wall}


def run() -> list[str]:
    a = bench_processor()
    bare, bag, ours = a["bare"], a["baggage"] - a["attach"], a["posthog"]
    lines = [
        f"(a) span: bare {bare / 1000:.2f} us, +BaggageSpanProcessor {bag / 1000:.2f} us, "
        f"+PosthogSpanProcessor {ours / 1000:.2f} us",
        ratio_line("    added cost vs BaggageSpanProcessor", ours - bare, bag - bare, 0.5),
        ratio_line("    whole span vs bare SDK span", ours, bare, 1.25),
    ]
    b = bench_exporter()
    lines.append(
        f"(b) exporter: {b['received']:.0f} of 100000 spans delivered as events in "
        f"{b['wall_s']:.2f} s = {b['spans_per_s']:.0f} spans/s"
    )
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
