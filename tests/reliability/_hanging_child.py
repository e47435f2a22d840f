"""Child process of test_queue_bytes: large events captured while PostHog never answers.

    python -m tests.reliability._hanging_child URL EVENTS EVENT_KIB [MAX_QUEUE_BYTES]

Captures EVENTS events of EVENT_KIB KiB each (a new string per event) into a client whose
server stalls every request, then prints one JSON line: this process's peak RSS growth over
the burst (``VmHWM``, KiB) and the client's stats. ``MAX_QUEUE_BYTES`` 0 or absent: the
default.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
from typing import Any


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main() -> None:
    url, events, kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    max_bytes = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    from posthog_otel import Client

    options: dict[str, Any] = {"max_queue_size": 10_000, "flush_at": 100, "timeout": 2}
    if max_bytes:
        options["max_queue_bytes"] = max_bytes
    client = Client("phc_hanging", host=url, **options)
    client.capture("warm_up", distinct_id="warm")
    gc.collect()
    before = _status_kib("VmHWM")
    for i in range(events):
        payload = f"{i:08d}" * (kib * 128)  # a new string of KIB KiB
        client.capture("big", distinct_id=f"user-{i % 100}", properties={"payload": payload})
    peak = _status_kib("VmHWM")
    during = client.stats()
    client.shutdown(0.5)
    print(
        json.dumps(
            {
                "events": events,
                "event_kib": kib,
                "peak_growth_kib": peak - before,
                "queued_at_end": during["queued"],
                "queued_bytes_at_end": during.get("queued_bytes"),
                "dropped": during["dropped"],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
