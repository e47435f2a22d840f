"""Logs export under a faulty PostHog: the app's logging calls never wait, every record is
delivered once or counted as dropped with its reason, ``Retry-After`` and 413 are honoured.

Each test installs the export behind the real root logger (``install``) with a client whose
OTLP logs endpoint is a scripted loopback receiver (or a port nobody listens on), logs from the
test thread, and times every ``logger.warning`` call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from posthog_otel import Client
from posthog_otel.logs.install import LogsInstallation, install
from tests.support.otlp_receiver import Answer, OtlpReceiver, otlp_receiver
from tests.support.procs import free_port

KEY = "phc_logs_faults"
CALL_BOUND_S = 0.25  # one logging call, worst case on a busy 2-core box (typically ~50 us)

log = logging.getLogger("faults.app")


@pytest.fixture
def server() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


@pytest.fixture
def export() -> Iterator[Any]:
    made: list[tuple[Client, LogsInstallation]] = []

    def make(host: str, **options: Any) -> tuple[Client, LogsInstallation]:
        options.setdefault("flush_interval", 0.05)
        client = Client(KEY, host=host, **options)
        installed = install(client, level="WARNING")
        assert installed is not None
        installed.processor.export.backoff_base = 0.01  # only Retry-After makes a long wait
        client.attach_export("logs", installed.processor.export)
        made.append((client, installed))
        return client, installed

    yield make
    for client, installed in made:
        installed.uninstall(flush_timeout=0)
        client.shutdown(0)


def _log(count: int, text: str = "record") -> float:
    """Log ``count`` records; the slowest call in seconds."""
    slowest = 0.0
    for i in range(count):
        started = time.perf_counter()
        log.warning("%s %d", text, i)
        slowest = max(slowest, time.perf_counter() - started)
    return slowest


def _accounted(stats: dict[str, Any]) -> bool:
    return stats["captured"] == stats["sent"] + stats["dropped_total"] and not stats["queued"]


def test_posthog_down_drops_are_counted_and_logging_never_waits(export: Any) -> None:
    client, installed = export(f"http://127.0.0.1:{free_port()}", max_retries=2, timeout=0.5)
    slowest = _log(200)
    assert installed.processor.force_flush(20_000)
    stats = client.stats()["logs"]
    assert slowest < CALL_BOUND_S
    assert stats["sent"] == 0
    assert stats["dropped"] == {"failed": 200}
    assert stats["retries"] >= 2
    assert _accounted(stats)


def test_429_retry_after_is_honoured_and_each_record_arrives_once(
    export: Any, server: OtlpReceiver
) -> None:
    client, installed = export(server.url, max_retries=3, flush_interval=5.0)
    server.fail_next(Answer(status=429, headers={"Retry-After": "1"}))
    slowest = _log(20)
    assert installed.processor.force_flush(10_000)
    stats = client.stats()["logs"]
    first, second = server.requests
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.9  # the backoff alone would have waited ~10 ms
    assert sorted(row.body for row in server.records()) == sorted(f"record {i}" for i in range(20))
    assert stats["sent"] == 20 and stats["retries"] == 1 and stats["dropped"] == {}
    assert slowest < CALL_BOUND_S


def test_413_splits_the_batch_until_it_fits(export: Any) -> None:
    with otlp_receiver(max_records=6) as server:
        client, installed = export(server.url, flush_interval=5.0)
        _log(40)
        assert installed.processor.force_flush(10_000)
        stats = client.stats()["logs"]
        bodies = [row.body for row in server.records()]
    assert sorted(bodies) == sorted(f"record {i}" for i in range(40))  # each once
    assert any(request.status == 413 for request in server.requests)
    assert stats["sent"] == 40 and stats["dropped"] == {} and stats["batches"] >= 7


def test_a_record_posthog_refuses_even_alone_is_dropped_as_too_large(export: Any) -> None:
    with otlp_receiver(max_records=0) as server:
        client, installed = export(server.url, flush_interval=5.0)
        _log(3)
        assert installed.processor.force_flush(10_000)
        stats = client.stats()["logs"]
    assert server.records() == []
    assert stats["dropped"] == {"too_large": 3}
    assert _accounted(stats)


def test_a_slow_posthog_never_slows_logging_and_shutdown_keeps_its_budget(
    export: Any, server: OtlpReceiver
) -> None:
    client, _installed = export(server.url, max_retries=0, timeout=0.3)
    server.fail_next(*(Answer(stall=2.0) for _ in range(50)))
    slowest = _log(100)
    time.sleep(0.2)
    slowest = max(slowest, _log(100, "more"))
    started = time.monotonic()
    client.shutdown(1.0)
    took = time.monotonic() - started
    stats = client.stats()["logs"]
    assert slowest < CALL_BOUND_S
    assert took < 2.0
    assert stats["sent"] == 0
    assert set(stats["dropped"]) <= {"unacknowledged", "failed", "shutdown"}
    assert stats["dropped_total"] == 200
    assert _accounted(stats)


def test_the_queue_is_bounded_in_bytes_and_drops_are_counted(
    export: Any, server: OtlpReceiver
) -> None:
    client, installed = export(server.url, max_queue_bytes=4096, flush_interval=0.05)
    server.fail_next(*(Answer(stall=1.0) for _ in range(3)))
    slowest = _log(300, "x" * 200)
    stats = client.stats()["logs"]
    assert stats["dropped"].get("queue_full", 0) > 200  # 4 KiB holds about ten of them
    assert stats["queued_bytes"] <= 4096
    assert slowest < CALL_BOUND_S
    assert installed.processor.force_flush(10_000)
    stats = client.stats()["logs"]
    assert _accounted(stats)
    assert len(server.records()) == stats["sent"]
