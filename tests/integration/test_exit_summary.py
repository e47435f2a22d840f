"""A script whose events cannot be delivered says so in one final line when it exits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from tests.support.procs import ROOT, free_port


def _run(code: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    return done, time.monotonic() - started


def test_unreachable_host_ends_with_a_count_and_the_reason() -> None:
    port = free_port()  # nothing listens there: connections are refused
    done, seconds = _run(
        f"""
        import posthog_otel as posthog
        posthog.setup(api_key="phc_k", host="127.0.0.1:{port}", shutdown_timeout=1.5)
        for _ in range(3):
            posthog.capture("e", distinct_id="u")
        """
    )
    assert done.returncode == 0, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("posthog-otel: 3 of 3 event(s) were not delivered to ")
    assert f"http://127.0.0.1:{port}/batch/" in last
    assert "PostHog is unreachable (ConnectionError)" in last
    assert seconds < 1.5 + 8  # the budget, plus interpreter start-up on a loaded machine


def test_nothing_is_said_when_everything_was_delivered() -> None:
    done, _ = _run(
        """
        from posthog_otel.testing.capture_server import CaptureServer
        import posthog_otel as posthog
        with CaptureServer() as server:
            posthog.setup(api_key="phc_k", host=server.url)
            posthog.capture("e", distinct_id="u")
            posthog.flush(5)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "not delivered" not in done.stderr
