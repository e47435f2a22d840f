"""Child process of test_overload: capture N events as fast as possible into a slow PostHog.

    python -m tests.reliability._overload_child URL EVENTS MAX_QUEUE_SIZE

Prints one JSON line: peak RSS before and after the burst, capture latency percentiles, and the
client's stats after a short shutdown. Peak RSS is ``VmHWM`` (this process's own high-water
mark); ``getrusage().ru_maxrss`` is reported too, but on Linux it starts from the parent's RSS
at fork (kept across exec), so a child of a large pytest process reads the parent's size.
"""

from __future__ import annotations

import array
import gc
import json
import logging
import resource
import sys
import time


def _peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main() -> None:
    url, events, max_queue = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    from posthog_otel import Client
    from tests.reliability._report import latency_ms

    client = Client("phc_overload", host=url, max_queue_size=max_queue, flush_at=100, timeout=30)
    client.capture("warm_up", distinct_id="warm")  # starts the sender thread
    gc.collect()
    before = _status_kib("VmHWM")

    timings = array.array("q")  # 8 bytes per sample: the 10x run must not grow by its list
    append = timings.append
    clock = time.perf_counter_ns
    started = time.monotonic()
    for i in range(events):
        payload = f"{i:08d}" * 128  # a new 1 KiB string per event: memory that would pile up
        began = clock()
        client.capture("burst", distinct_id=f"user-{i % 1000}", properties={"payload": payload})
        append(clock() - began)
    burst_seconds = time.monotonic() - started
    after = _status_kib("VmHWM")
    current = _status_kib("VmRSS")
    rusage_peak = _peak_rss_kib()
    during = client.stats()

    client.shutdown(1.0)
    # A batch in flight at the deadline is settled by the sender a moment later.
    deadline = time.monotonic() + 5
    while client.stats()["queued"] and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = client.stats()
    result = {
        "events": events,
        "max_queue_size": max_queue,
        "rss_before_burst_kib": before,
        "peak_rss_kib": after,
        "rss_after_burst_kib": current,
        "ru_maxrss_kib": rusage_peak,
        "burst_seconds": round(burst_seconds, 3),
        "queued_at_end_of_burst": during["queued"],
        "capture_latency": latency_ms(list(timings)),
        "stats": stats,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
