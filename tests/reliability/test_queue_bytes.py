"""The event queue is bounded in bytes: large events against a PostHog that never answers.

A child process captures 1,000 events of 200 KiB (about 200 MiB) into a server that stalls
every request. With ``max_queue_bytes`` = 16 MiB the child's peak RSS grows by a few times
that at most (the queued events, the batch being sent and its encoding), not by the 200 MiB a
count-only bound (``max_queue_size`` 10,000) would let in; the excess is counted as
``queue_full``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from posthog_otel.testing.capture_server import CaptureServer, Fault
from tests.support.procs import ROOT

EVENTS = 1_000
EVENT_KIB = 200
MAX_QUEUE_BYTES = 16 * 1024 * 1024
GROWTH_BOUND_KIB = 80 * 1024  # the bound x ~3 plus slack, far under the ~200 MiB unbounded


def run_child(url: str, events: int, kib: int, max_bytes: int = 0) -> dict[str, Any]:
    command = [sys.executable, "-m", "tests.reliability._hanging_child", url, str(events)]
    command += [str(kib), str(max_bytes)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def hanging_server() -> Iterator[CaptureServer]:
    with CaptureServer(keep_requests=False) as server:
        server.fail_next(*[Fault(stall=30.0)] * 10_000)
        yield server


def test_large_events_against_a_hanging_server_stay_within_the_byte_bound(
    hanging_server: CaptureServer,
) -> None:
    result = run_child(hanging_server.url, EVENTS, EVENT_KIB, MAX_QUEUE_BYTES)
    assert result["peak_growth_kib"] < GROWTH_BOUND_KIB, result
    assert result["queued_bytes_at_end"] <= MAX_QUEUE_BYTES, result
    # about 16 MiB / 200 KiB = 80 events fit; the rest were refused and counted
    assert result["dropped"]["queue_full"] >= EVENTS - 100, result
