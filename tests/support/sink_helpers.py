"""Small HTTP helpers shared by the sink tests (real requests to 127.0.0.1)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import requests

from .waiting import wait_until

KEY = "phc_sink_test"


def event(name: str = "signed_up", distinct_id: Any = "u1", **extra: Any) -> dict[str, Any]:
    """A valid event as posthog-python sends it."""
    body: dict[str, Any] = {
        "event": name,
        "distinct_id": distinct_id,
        "properties": {"plan": "pro"},
        "timestamp": "2026-01-02T03:04:05.123456+00:00",
        "uuid": str(uuid.uuid4()),
    }
    body.update(extra)
    return body


def batch(*events: dict[str, Any], api_key: str | None = KEY) -> dict[str, Any]:
    body: dict[str, Any] = {"batch": list(events), "sent_at": "2026-01-02T03:04:06+00:00"}
    if api_key is not None:
        body["api_key"] = api_key
    return body


def post(
    url: str,
    body: Any,
    *,
    compress: bool = False,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> requests.Response:
    data = raw if raw is not None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    if compress:
        data = gzip.compress(data)
        sent["Content-Encoding"] = "gzip"
    return requests.post(url, data=data, headers=sent, timeout=10)


def start_sink_process(db: Path) -> tuple[subprocess.Popen[str], str]:
    """``posthog-otel sink --port 0`` in a subprocess; returns it and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "posthog_otel", "sink", "--port", "0", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        _, err = process.communicate(timeout=5)
        raise AssertionError(f"sink did not start: {line!r} {err!r}")
    url = line.split("listening on", 1)[1].strip()

    def healthy() -> bool:
        try:
            return requests.get(url + "/healthz", timeout=1).ok
        except requests.ConnectionError:
            return False

    try:
        wait_until(healthy, timeout=10, what="the sink to answer /healthz", procs=[process])
    except AssertionError:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=5)
        raise
    return process, url
