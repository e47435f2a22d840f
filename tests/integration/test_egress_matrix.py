"""No PostHog identity to a third party on any outbound path, in any tracing setting.

Each case is a fresh process with ``OTEL_PROPAGATORS=tracecontext,baggage,posthog`` (the stock
baggage propagator included) running :mod:`tests.support.egress_matrix`: requests, httpx
(sync, async), urllib3, urllib and aiohttp, with our instrumentors on and off, to ``billing``
(a propagation target) and ``api.example.com`` (a third party), both resolving to 127.0.0.1
inside that process. The context also holds a ``posthog.distinct_id`` OpenTelemetry baggage
entry, which the stock propagator writes unless ours removes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.egress_matrix import PATHS, TARGET, THIRD_PARTY, TRACERS, leaked

ROOT = Path(__file__).resolve().parents[2]


def _run(tracer: str, contrib: bool) -> list[dict[str, Any]]:
    env = {**os.environ, "OTEL_PROPAGATORS": "tracecontext,baggage,posthog"}
    env.pop("OTEL_TRACES_SAMPLER", None)
    command = [sys.executable, "-m", "tests.support.egress_matrix", "--tracer", tracer]
    if contrib:
        command.append("--contrib")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize("contrib", [False, True], ids=["plain", "contrib"])
@pytest.mark.parametrize("tracer", TRACERS)
def test_every_path_sends_identity_to_targets_only(tracer: str, contrib: bool) -> None:
    results = _run(tracer, contrib)
    assert len(results) == 2 * len(PATHS) * 2  # ours on/off x paths x destinations
    for case in results:
        headers = case["headers"]
        label = (case["path"], case["destination"], "ours" if case["ours"] else "no ours")
        if case["destination"] == THIRD_PARTY:
            assert headers["host"][0].startswith(THIRD_PARTY + ":"), label
            assert leaked(headers) == [], label
        else:
            assert case["destination"] == TARGET
            if case["ours"]:
                assert headers["x-posthog-distinct-id"] == ["user-1"], label
                assert headers["x-posthog-session-id"] == ["session-1"], label
                members = ",".join(headers["baggage"]).split(",")
                assert "posthog.distinct_id=user-1" in members, label
                assert "posthog.tag.plan=pro" in members, label
            elif not (contrib and tracer == "sampled"):  # the destination is unknown
                assert leaked(headers) == [], label
        if contrib:  # other members (and trace context, given a provider) still go everywhere
            assert "other=x" in ",".join(headers.get("baggage", [])).split(","), label
            assert ("traceparent" in headers) is (tracer != "none"), label
