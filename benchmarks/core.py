"""Core benchmarks: contexts, caller-side capture cost, and bulk delivery, vs posthog-python.

    python -m benchmarks.core            # all three, printed with ratios

(a) ``new_context`` + ``identify_context`` + ``set_context_session`` + ``tag`` + exit;
    target <= 0.5x posthog-python.
(b) caller-side cost of ``capture()`` with three properties inside a context, both clients
    sending to a loopback capture server in another process; target <= 0.25x.
(c) 100,000 events delivered to a loopback capture server, each library with its defaults, each
    in its own process (so peak RSS is its own); wall time target <= 1.0x, zero lost.
"""

from __future__ import annotations

import json
import logging
import resource
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ._timing import compare, per_call_ns, ratio_line

PROPS = {"plan": "pro", "amount": 42, "first": True}


@contextmanager
def capture_server_process() -> Iterator[str]:
    """A capture server in its own process (its parsing does not share our GIL)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "posthog_otel.testing.capture_server"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def server_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/_stats", timeout=10) as response:
        result: dict[str, int] = json.loads(response.read())
        return result


def bench_contexts() -> dict[str, float]:
    import posthog as ph

    import posthog_otel as ours

    def ours_cycle() -> None:
        with ours.new_context():
            ours.identify_context("user-1")
            ours.set_context_session("session-1")
            ours.tag("plan", "pro")

    def peer_cycle() -> None:
        with ph.new_context():
            ph.identify_context("user-1")
            ph.set_context_session("session-1")
            ph.tag("plan", "pro")

    return compare({"posthog-otel": ours_cycle, "posthog-python": peer_cycle}, calls=50_000)


def bench_capture(url: str) -> dict[str, float]:
    import posthog as ph

    import posthog_otel as ours

    our_client = ours.Client("phc_bench", host=url)
    peer_client = ph.Posthog("phc_bench", host=url)
    results: dict[str, list[float]] = {"posthog-otel": [], "posthog-python": []}

    def ours_capture() -> None:
        our_client.capture("order_completed", properties=PROPS)

    def peer_capture() -> None:
        peer_client.capture("order_completed", properties=PROPS)

    contenders: dict[str, tuple[Callable[[], None], Callable[[], Any], Any, Any]] = {
        "posthog-otel": (ours_capture, our_client.flush, ours.new_context, ours),
        "posthog-python": (peer_capture, peer_client.flush, ph.new_context, ph),
    }
    for round_number in range(8):
        for name, (fn, flush, new_context, module) in contenders.items():
            with new_context():
                module.identify_context("user-1")
                module.tag("route", "/checkout")
                took = per_call_ns(fn, 2_000)  # stays well under both default queue sizes
            flush()
            if round_number:  # the first round is warm-up
                results[name].append(took)
    our_client.shutdown(10)
    peer_client.shutdown()
    return {name: sorted(values)[len(values) // 2] for name, values in results.items()}


def _deliver(library: str, url: str, count: int) -> dict[str, Any]:
    """Capture ``count`` events with ``library``'s defaults and wait until all arrived."""
    logging.disable(logging.WARNING)
    if library == "posthog-otel":
        import posthog_otel

        client: Any = posthog_otel.Client("phc_bench", host=url)

        def depth() -> int:
            return int(client.stats()["queued"])
    else:
        import posthog

        client = posthog.Posthog("phc_bench", host=url)

        def depth() -> int:
            return int(client.queue.qsize())

    started = time.perf_counter()
    for i in range(count):
        # The same pacing for both: stay under the default queue size so nothing is dropped.
        if i % 500 == 0:
            while depth() > 5_000:
                time.sleep(0.001)
        client.capture("bulk_event", distinct_id=f"user-{i % 1000}", properties=PROPS)
    client.flush()
    while server_stats(url)["events"] < count and time.perf_counter() - started < 300:
        time.sleep(0.01)
    wall = time.perf_counter() - started
    stats = server_stats(url)
    client.shutdown()
    return {
        "wall_s": wall,
        "received": stats["events"],
        "unique": stats["unique"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def bench_delivery(count: int = 100_000) -> dict[str, dict[str, Any]]:
    results = {}
    for library in ("posthog-otel", "posthog-python"):
        with capture_server_process() as url:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.core", "deliver", library, url, str(count)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[library] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def run() -> list[str]:
    lines = []
    a = bench_contexts()
    lines.append(ratio_line("(a) context cycle", a["posthog-otel"], a["posthog-python"], 0.5))
    with capture_server_process() as url:
        b = bench_capture(url)
    lines.append(
        ratio_line("(b) capture() caller cost", b["posthog-otel"], b["posthog-python"], 0.25)
    )
    c = bench_delivery()
    ours, peer = c["posthog-otel"], c["posthog-python"]
    lines.append(
        ratio_line("(c) 100k events delivered, wall", ours["wall_s"], peer["wall_s"], 1.0, unit="s")
    )
    for name, result in c.items():
        lost = 100_000 - result["unique"]
        lines.append(
            f"    {name}: {result['wall_s']:.2f} s, received {result['received']}, "
            f"unique {result['unique']}, lost {lost}, peak RSS {result['peak_rss_mib']:.0f} MiB"
        )
    return lines


def main(argv: list[str]) -> None:
    if argv[:1] == ["deliver"]:
        print(json.dumps(_deliver(argv[1], argv[2], int(argv[3]))))
        return
    for line in run():
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
