"""A closed-loop HTTP/1.1 load generator: N connections, each one request at a time.

    python -m benchmarks._load PORT CONNECTIONS WARMUP_S SECONDS

Prints one JSON line: requests completed in the timed window, their latencies' p50/p99 (ms),
errors, and the total requests sent (warm-up included). Keeps connections alive unless the
server closes them (gunicorn's sync worker does, after each response). Each request carries
posthog-js style tracing headers (a distinct id among 1,000 and a session id).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time


def _request(port: int, n: int) -> bytes:
    return (
        f"GET /item HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"X-POSTHOG-DISTINCT-ID: user-{n % 1000}\r\n"
        f"X-POSTHOG-SESSION-ID: 0190a1b2-c3d4-7e5f-8a9b-{n % 1000:012d}\r\n"
        "User-Agent: bench\r\n\r\n"
    ).encode()


async def _one_connection(
    port: int, deadline: float, window_start: float, latencies: list[float], counts: list[int]
) -> None:
    reader = writer = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            started = time.perf_counter()
            writer.write(_request(port, counts[0]))
            counts[0] += 1
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await reader.readexactly(length)
            ended = time.perf_counter()
            if not head.startswith(b"HTTP/1.1 200"):
                counts[1] += 1
            elif started >= window_start and ended <= deadline:
                latencies.append(ended - started)
            if close:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError):
            counts[1] += 1
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def _run(port: int, connections: int, warmup: float, seconds: float) -> dict[str, float]:
    window_start = time.perf_counter() + warmup
    deadline = window_start + seconds
    latencies: list[float] = []
    counts = [0, 0]  # sent, errors
    await asyncio.gather(
        *(
            _one_connection(port, deadline, window_start, latencies, counts)
            for _ in range(connections)
        )
    )
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0

    return {
        "requests": len(ordered),
        "rps": len(ordered) / seconds,
        "p50_ms": 1000 * statistics.median(ordered) if ordered else 0.0,
        "p99_ms": pct(0.99),
        "errors": counts[1],
        "sent": counts[0],
    }


def main() -> None:
    port, connections, warmup, seconds = sys.argv[1:5]
    result = asyncio.run(_run(int(port), int(connections), float(warmup), float(seconds)))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
