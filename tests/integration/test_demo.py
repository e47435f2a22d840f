"""`posthog-otel demo` as a user runs it: a subprocess, exit code 0 and the expected summary."""

from __future__ import annotations

import subprocess
import sys

from tests.support.procs import ROOT


def test_demo_runs_end_to_end() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "posthog_otel", "demo", "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "OK: all 14 expected events arrived for demo-user-1" in out
    assert "person(s): demo-user-1" in out
    assert "exception: CardDeclined: card declined for order order-8" in out
    for name in (
        "products_viewed",
        "added_to_cart",
        "order_completed",
        "receipt_queued",
        "payment_authorized",
        "$ai_generation",
    ):
        assert f"  {name} " in out
    assert "Viewer: http://127.0.0.1:" in out
    # the services' log lines (PosthogInstrumentor(logs=True)) arrive with the same person,
    # and the checkout's trace page shows its spans, logs and events together
    assert "spans: 7 (billing 2, shop-api 5)" in out  # traces=True
    assert "log records: 7 (billing 2, shop-api 5)" in out
    assert "checkout trace (spans, logs, events): http://127.0.0.1:" in out
