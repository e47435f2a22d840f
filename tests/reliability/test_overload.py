"""Overload: the app captures far faster than PostHog accepts.

A loopback server takes 0.1 s per batch (about 1,000 events/s); a child process captures
100,000 events of 1 KiB each as fast as it can (about 50x faster), and the same with 10x fewer
events. Memory is bounded by ``max_queue_size``: the two runs' peak RSS (``VmHWM``, measured in
each child; ``getrusage``'s ``ru_maxrss`` is reported too, though on Linux it includes the
parent's size at fork) differ by far less than the 100+ MiB that 90,000 more queued events
would take; the excess is dropped and counted as ``queue_full``, with one warning per burst,
not one per event; ``captured == sent + dropped``; and the caller's latency stays low.

A control run with an effectively unbounded queue shows the measurement would see the growth.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from posthog_otel.testing.capture_server import CaptureServer, Fault
from tests.support.procs import ROOT

from ._report import LONG, write_artifact

MAX_QUEUE = 2_000
BIG = 400_000 if LONG else 100_000
SMALL = BIG // 10
RSS_GROWTH_BOUND_MIB = 30  # 90,000+ queued 1 KiB events would need well over 100 MiB
P99_BOUND_MS = 20.0


def _run_child(url: str, events: int, max_queue: int = MAX_QUEUE) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.reliability._overload_child",
            url,
            str(events),
            str(max_queue),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.fixture
def slow_server() -> Any:
    with CaptureServer(keep_requests=False) as server:
        server.fail_next(*[Fault(stall=0.1)] * 100_000)  # every batch takes 0.1 s
        yield server


def test_memory_stays_bounded_and_drops_are_counted(slow_server: CaptureServer) -> None:
    small, small_log = _run_child(slow_server.url, SMALL)
    big, big_log = _run_child(slow_server.url, BIG)
    control, _ = _run_child(slow_server.url, BIG, max_queue=10_000_000)

    for run, log in ((small, small_log), (big, big_log)):
        stats = run["stats"]
        events = run["events"] + 1  # + the warm-up event
        assert stats["captured"] == events
        assert stats["captured"] == stats["sent"] + stats["dropped_total"], stats
        assert stats["queued"] == 0
        assert run["queued_at_end_of_burst"] <= MAX_QUEUE + 100  # the queue + one batch in flight
        # far more was captured than the slow server could take: the excess was refused
        assert stats["dropped"]["queue_full"] >= run["events"] - MAX_QUEUE - stats["sent"]
        assert set(stats["dropped"]) <= {"queue_full", "shutdown", "unacknowledged"}
        assert 1 <= log.count("queue is full") <= 2, log  # one warning per burst, no flood
        assert run["capture_latency"]["p99_ms"] < P99_BOUND_MS, run["capture_latency"]

    # The server stored what the clients say they sent, each event once, plus at most the
    # batches that were sent but not answered before a client's shutdown deadline.
    assert slow_server.event_count == len(slow_server.uuids)
    sent = sum(run["stats"]["sent"] for run in (small, big, control))
    unacknowledged = sum(
        run["stats"]["dropped"].get("unacknowledged", 0) for run in (small, big, control)
    )
    assert sent <= slow_server.event_count <= sent + unacknowledged

    growth_mib = (big["peak_rss_kib"] - small["peak_rss_kib"]) / 1024
    control_growth_mib = (control["peak_rss_kib"] - small["peak_rss_kib"]) / 1024
    write_artifact(
        "overload",
        {
            "max_queue_size": MAX_QUEUE,
            "server_ms_per_batch": 100,
            "runs": [
                {
                    "events": run["events"],
                    "max_queue_size": run["max_queue_size"],
                    "peak_rss_mib": round(run["peak_rss_kib"] / 1024, 1),
                    "rss_after_burst_mib": round(run["rss_after_burst_kib"] / 1024, 1),
                    "ru_maxrss_mib": round(run["ru_maxrss_kib"] / 1024, 1),
                    "rss_before_burst_mib": round(run["rss_before_burst_kib"] / 1024, 1),
                    "burst_seconds": run["burst_seconds"],
                    "capture_latency": run["capture_latency"],
                    "sent": run["stats"]["sent"],
                    "dropped": run["stats"]["dropped"],
                }
                for run in (small, big, control)
            ],
            "peak_rss_growth_mib_for_10x_events": round(growth_mib, 1),
            "control_unbounded_queue_growth_mib": round(control_growth_mib, 1),
        },
    )
    assert growth_mib < RSS_GROWTH_BOUND_MIB, (small, big)
    assert control_growth_mib > 2 * RSS_GROWTH_BOUND_MIB, control  # the probe sees real growth
