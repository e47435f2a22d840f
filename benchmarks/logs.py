"""Logs export benchmark: the added cost per log record of our export vs OpenTelemetry's stock one.

    python -m benchmarks.logs

Per ``logger.info(...)`` call inside a PostHog context (identity, session, 5 tags) and an active
span, on the logging thread, every contender with the SDK's ``LoggingHandler`` on the logger:

* **none**: the same logger without the handler (what the logging call costs anyway);
* **stock**: ``LoggerProvider`` + ``BatchLogRecordProcessor`` + ``OTLPLogExporter``
  (protobuf, gzip) — the records carry no PostHog identity;
* **stock + extra** (for reference): the same, with the app passing the PostHog attributes our
  export adds (identity, session, tags) as ``extra={...}`` on each call, so both send the same
  data;
* **posthog-otel**: ``LoggerProvider`` + ``PosthogLogProcessor`` (level filter, own-logger check,
  identity and tags from the context, byte-bounded queue; OTLP protobuf, gzip).

Both export to the same loopback OTLP receiver in another process (it reads each body and
answers 200), queues large enough that nothing is dropped (checked). Added cost = contender -
none; the ratio is ours / stock (target <= 1.0x), measured two ways: (a) wall time of the
logging calls on the app's thread (the export thread runs meanwhile and competes for the GIL);
(b) this process's CPU time for logging and exporting the records (calls + flush: encoding,
gzip and posting included), which a busy machine disturbs less. Then the delivery rate: 50,000
records logged and flushed, records/s end to end.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as posthog
from posthog_otel.config import ClientSettings
from posthog_otel.logs.processor import PosthogLogProcessor

from ._loopback import otlp_receiver
from ._timing import per_call_ns, ratio_line

TAGS = {"plan": "pro", "region": "eu", "cart_items": 3, "beta": True, "ab_group": "B"}
KEY = "phc_bench_logs"
CALLS = 20_000
ROUNDS = 7
THROUGHPUT_RECORDS = 50_000


def _handler(provider: LoggerProvider) -> logging.Handler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return LoggingHandler(logger_provider=provider)


def _logger(name: str, handler: logging.Handler | None) -> logging.Logger:
    logger = logging.getLogger(f"bench.{name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if handler is not None:
        logger.addHandler(handler)
    return logger


class _Contenders:
    def __init__(self, url: str) -> None:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        resource = Resource.create({"service.name": "bench"})
        self.stock_provider = LoggerProvider(resource=resource)
        self.stock_processor = BatchLogRecordProcessor(
            OTLPLogExporter(
                endpoint=f"{url}/i/v1/logs",
                headers={"Authorization": f"Bearer {KEY}"},
                compression=Compression.Gzip,
            ),
            max_queue_size=2_000_000,
            max_export_batch_size=512,
        )
        self.stock_provider.add_log_record_processor(self.stock_processor)
        settings = ClientSettings.build(
            KEY, url, max_queue_size=2_000_000, max_queue_bytes=4 * 1024**3
        )
        self.ours_provider = LoggerProvider(resource=resource)
        self.ours_processor = PosthogLogProcessor(settings, level=logging.INFO)
        self.ours_provider.add_log_record_processor(self.ours_processor)
        stock_handler = _handler(self.stock_provider)
        self.loggers = {
            "none": _logger("none", None),
            "stock": _logger("stock", stock_handler),
            "stock + extra": _logger("stock_extra", stock_handler),
            "posthog-otel": _logger("posthog", _handler(self.ours_provider)),
        }

    def flush(self) -> None:
        self.stock_processor.force_flush(120_000)
        self.ours_processor.force_flush(120_000)

    def shutdown(self) -> None:
        self.stock_provider.shutdown()
        self.ours_provider.shutdown()


@contextmanager
def _request_context() -> Iterator[None]:
    tracer = TracerProvider().get_tracer("bench")
    with posthog.new_context(), tracer.start_as_current_span("POST /orders"):
        posthog.identify_context("user-1")
        posthog.set_context_session("session-1")
        for key, value in TAGS.items():
            posthog.tag(key, value)
        yield


def _posthog_attributes() -> dict[str, Any]:
    """What an app would pass by hand to carry the context's identity on each record."""
    attributes: dict[str, Any] = {
        "posthogDistinctId": posthog.get_context_distinct_id(),
        "sessionId": posthog.get_context_session_id(),
        "posthog.distinct_id": posthog.get_context_distinct_id(),
        "posthog.session_id": posthog.get_context_session_id(),
    }
    for key, value in posthog.get_tags().items():
        attributes[f"posthog.tag.{key}"] = value
    return attributes


def bench_per_record(contenders: _Contenders) -> dict[str, float]:
    calls: dict[str, Callable[[], object]] = {}
    for name, logger in contenders.loggers.items():
        calls[name] = lambda logger=logger: logger.info("order %s placed", "o-17")
    extra_logger = contenders.loggers["stock + extra"]

    def stock_with_extra() -> None:
        extra_logger.info("order %s placed", "o-17", extra=_posthog_attributes())

    calls["stock + extra"] = stock_with_extra
    samples: dict[str, list[float]] = {name: [] for name in calls}
    with _request_context():
        for fn in calls.values():  # warm up
            per_call_ns(fn, CALLS // 10)
        contenders.flush()
        for _ in range(ROUNDS):
            for name, fn in calls.items():
                samples[name].append(per_call_ns(fn, CALLS))
                contenders.flush()  # each round starts with empty queues and idle exporters
    return {name: sorted(values)[len(values) // 2] for name, values in samples.items()}


def bench_cpu(contenders: _Contenders) -> dict[str, float]:
    """Process CPU ns per record: the logging calls and their export (flushed), interleaved."""
    flushers: dict[str, Callable[[], object]] = {
        "none": lambda: None,
        "stock": lambda: contenders.stock_processor.force_flush(120_000),
        "posthog-otel": lambda: contenders.ours_processor.force_flush(120_000),
    }
    samples: dict[str, list[float]] = {name: [] for name in flushers}
    with _request_context():
        contenders.flush()
        for _ in range(ROUNDS):
            for name, flush in flushers.items():
                logger = contenders.loggers[name]
                started = time.process_time_ns()
                for _ in range(CALLS):
                    logger.info("order %s placed", "o-17")
                flush()
                samples[name].append((time.process_time_ns() - started) / CALLS)
    return {name: sorted(values)[len(values) // 2] for name, values in samples.items()}


def bench_delivery(contenders: _Contenders) -> dict[str, float]:
    rates: dict[str, float] = {}
    flushers = {
        "stock": contenders.stock_processor.force_flush,
        "posthog-otel": contenders.ours_processor.force_flush,
    }
    with _request_context():
        for name, flush in flushers.items():
            logger = contenders.loggers[name]
            started = time.perf_counter()
            for i in range(THROUGHPUT_RECORDS):
                logger.info("order %d placed", i)
            flush(300_000)
            rates[name] = THROUGHPUT_RECORDS / (time.perf_counter() - started)
    return rates


def run() -> list[str]:
    lines: list[str] = []
    with otlp_receiver() as url:
        contenders = _Contenders(url)
        try:
            per_record = bench_per_record(contenders)
            cpu = bench_cpu(contenders)
            rates = bench_delivery(contenders)
            stats: dict[str, Any] = contenders.ours_processor.stats()
        finally:
            contenders.shutdown()
    none, stock, ours = per_record["none"], per_record["stock"], per_record["posthog-otel"]
    same_data = per_record["stock + extra"]
    lines.append(
        f"(a) logger.info() with identity + session + 5 tags + a span, {ROUNDS} rounds of "
        f"{CALLS}: "
        f"no handler {none / 1000:.2f} us, stock handler+batch+OTLP {stock / 1000:.2f} us, "
        f"stock + the same attributes by hand {same_data / 1000:.2f} us, "
        f"posthog-otel {ours / 1000:.2f} us"
    )
    lines.append(
        ratio_line(
            "    added cost per log record (ours vs stock OTLP export)",
            ours - none,
            stock - none,
            1.0,
        )
    )
    lines.append(
        ratio_line(
            "    added cost per log record (ours vs stock carrying the same attributes by hand)",
            ours - none,
            same_data - none,
            1.0,
        )
    )
    lines.append(
        f"(b) process CPU per record, logging + export (flushed): no handler "
        f"{cpu['none'] / 1000:.2f} us, stock {cpu['stock'] / 1000:.2f} us, "
        f"posthog-otel {cpu['posthog-otel'] / 1000:.2f} us"
    )
    lines.append(
        ratio_line(
            "    added CPU per log record (ours vs stock OTLP export)",
            cpu["posthog-otel"] - cpu["none"],
            cpu["stock"] - cpu["none"],
            1.0,
        )
    )
    lines.append(
        f"delivered end to end, {THROUGHPUT_RECORDS} records logged then flushed: "
        f"stock {rates['stock']:,.0f} records/s, posthog-otel {rates['posthog-otel']:,.0f} "
        f"records/s (ratio {rates['posthog-otel'] / rates['stock']:.2f}x)"
    )
    lines.append(
        f"posthog-otel export: sent {stats['sent']:,} of {stats['captured']:,}, "
        f"dropped {stats['dropped_total']}"
    )
    return lines


if __name__ == "__main__":
    for line in run():
        print(line)
