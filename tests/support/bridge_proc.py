"""``posthog-otel bridge`` as a subprocess on 127.0.0.1, for pipeline tests.

    with running_bridge("--max-queue-size", "5000", posthog=server.url, token="t") as bridge:
        bridge.url            # "http://127.0.0.1:PORT" (the Collector's otlphttp endpoint)
        bridge.stats()        # GET /stats (with the required header): the bridge's counters

``token`` starts the bridge with ``--require-header "Authorization=Bearer <token>"``, which is
what ``examples/collector/collector.yaml`` sends. On exit: SIGTERM, then wait.
:func:`bridge_process` starts one with any arguments and environment (no header, no key).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

from tests.support.procs import free_port, start, terminate, wait_until_up


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
def bridge_process(
    *args: str, env: dict[str, str], stop_timeout: float = 30.0
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``python -m posthog_otel bridge --port PORT *args`` with ``env``: (url, process) once
    ``/healthz`` answers; SIGTERM on exit (killed after ``stop_timeout`` seconds)."""
    port = free_port()
    proc = start([sys.executable, "-m", "posthog_otel", "bridge", "--port", str(port), *args], env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/healthz", proc)
        yield url, proc
    finally:
        terminate(proc, stop_timeout)


@contextmanager
def running_bridge(
    *args: str, posthog: str, token: str = "collector-test", key: str = "phc_bridge"
) -> Iterator[RunningBridge]:
    env = {"POSTHOG_HOST": posthog, "POSTHOG_API_KEY": key}
    header = f"Authorization=Bearer {token}"
    with bridge_process("--require-header", header, *args, env=env) as (url, proc):
        yield RunningBridge(url, proc, token)
