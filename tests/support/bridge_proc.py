"""``posthog-otel bridge`` as a subprocess on 127.0.0.1, for pipeline tests.

    with running_bridge("--max-queue-size", "5000", posthog=server.url, token="t") as bridge:
        bridge.url            # "http://127.0.0.1:PORT" (the Collector's otlphttp endpoint)
        bridge.stats()        # GET /stats (with the required header): the bridge's counters

``token`` starts the bridge with ``--require-header "Authorization=Bearer <token>"``, which is
what ``examples/collector/collector.yaml`` sends. On exit: SIGTERM, then wait.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from tests.support.procs import free_port, start, wait_until_up


@dataclass
class RunningBridge:
    url: str
    proc: subprocess.Popen[str]
    token: str

    def stats(self) -> dict[str, Any]:
        response = requests.get(
            f"{self.url}/stats", headers={"Authorization": f"Bearer {self.token}"}, timeout=5
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


@contextmanager
def running_bridge(
    *args: str, posthog: str, token: str = "collector-test", key: str = "phc_bridge"
) -> Iterator[RunningBridge]:
    port = free_port()
    env = {"POSTHOG_HOST": posthog, "POSTHOG_API_KEY": key}
    proc = start(
        [
            sys.executable,
            "-m",
            "posthog_otel",
            "bridge",
            "--port",
            str(port),
            "--require-header",
            f"Authorization=Bearer {token}",
            *args,
        ],
        env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/healthz", proc)
        yield RunningBridge(url, proc, token)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
