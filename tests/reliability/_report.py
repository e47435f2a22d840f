"""Figures the reliability suites report: latency percentiles, and a JSON artifact per suite.

Artifacts go to ``test-artifacts/reliability-<name>.json`` (the benchmark report reads them);
each figure is also printed, visible with ``pytest -s``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"

LONG = os.environ.get("POSTHOG_OTEL_LONG", "").strip().lower() in ("1", "true", "yes", "on")
"""``POSTHOG_OTEL_LONG=1`` runs the long variants (more events, more rounds, more examples)."""


def latency_ms(samples_ns: list[int]) -> dict[str, float]:
    """p50, p99, p99.9 and max of per-call latencies given in nanoseconds, in milliseconds."""
    if not samples_ns:
        return {"calls": 0, "p50_ms": 0.0, "p99_ms": 0.0, "p999_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(samples_ns)

    def at(fraction: float) -> float:
        index = min(len(ordered) - 1, int(fraction * len(ordered)))
        return round(ordered[index] / 1e6, 4)

    return {
        "calls": len(ordered),
        "p50_ms": at(0.50),
        "p99_ms": at(0.99),
        "p999_ms": at(0.999),
        "max_ms": round(ordered[-1] / 1e6, 4),
    }


def write_artifact(name: str, figures: dict[str, Any]) -> Path:
    """Merge ``figures`` into ``test-artifacts/reliability-<name>.json`` and print them."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"reliability-{name}.json"
    current: dict[str, Any] = {}
    if path.exists():
        try:
            current = json.loads(path.read_text())
        except ValueError:
            current = {}
    current.update(figures)
    current["long"] = LONG
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    print(f"\n[reliability:{name}] {json.dumps(figures, sort_keys=True)}")
    return path
