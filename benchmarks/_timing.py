"""Small timing helpers shared by the benchmarks: interleaved rounds, medians, ratios."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable


def per_call_ns(fn: Callable[[], object], calls: int) -> float:
    """Nanoseconds per call of ``fn`` over ``calls`` calls.

    The garbage collector stays on, as in an app: collections caused by what ``fn`` allocates
    are part of its cost. A full collection first, so one contender does not pay for the
    garbage another left.
    """
    gc.collect()
    started = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - started) / calls


def compare(
    contenders: dict[str, Callable[[], object]], calls: int, rounds: int = 7
) -> dict[str, float]:
    """Median ns/call of each contender, measured in interleaved rounds (fair to both)."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():  # warm up
        per_call_ns(fn, max(1, calls // 10))
    for _ in range(rounds):
        for name, fn in contenders.items():
            samples[name].append(per_call_ns(fn, calls))
    return {name: statistics.median(values) for name, values in samples.items()}


def ratio_line(label: str, ours: float, theirs: float, target: float, unit: str = "us") -> str:
    scale = 1000.0 if unit == "us" else 1.0
    ratio = ours / theirs if theirs else float("inf")
    verdict = "meets" if ratio <= target else "MISSES"
    return (
        f"{label}: posthog-otel {ours / scale:.2f} {unit}, peer {theirs / scale:.2f} {unit}, "
        f"ratio {ratio:.2f}x (target <= {target}x: {verdict})"
    )
