"""Shared parts of the framework end-to-end tests (a downstream service, a Celery worker,
the checks)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from posthog_otel.testing.capture_server import CaptureServer

from .procs import BIN, free_port, start

HEADERS = {
    "X-POSTHOG-DISTINCT-ID": "browser-user",
    "X-POSTHOG-SESSION-ID": "browser-session",
    "User-Agent": "pytest-browser/1.0",
}


def start_downstream(server: CaptureServer) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {"PORT": str(port), "POSTHOG_API_KEY": "phc_e2e", "POSTHOG_HOST": server.url}
    proc = start([str(BIN / "python"), "-m", "tests.support.apps.downstream_service"], env)
    return proc, f"http://127.0.0.1:{port}"


def start_celery_worker(
    server: CaptureServer,
    broker_dir: Path,
    mode: str = "ours",
    pool: tuple[str, ...] = ("-P", "solo"),
    **env: str,
) -> subprocess.Popen[str]:
    """A real ``celery worker`` for ``tests.support.apps.celery_tasks`` on a filesystem broker."""
    environment = {
        "CELERY_BROKER_DIR": str(broker_dir),
        "CELERY_TEST_MODE": mode,
        "POSTHOG_API_KEY": "phc_worker",
        "POSTHOG_HOST": server.url,
        "OTEL_SERVICE_NAME": f"worker-{mode}",
        **env,
    }
    args = [str(BIN / "celery"), "-A", "tests.support.apps.celery_tasks", "worker", *pool]
    args += ["--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "error"]
    return start(args, environment)


def check_end_to_end(server: CaptureServer, upstream_error: str) -> None:
    """What the capture server got from both processes of an end-to-end run."""
    events = server.events
    assert events
    assert {e["distinct_id"] for e in events} == {"browser-user"}, events
    assert {e["properties"].get("$session_id") for e in events} == {"browser-session"}
    exceptions = server.named("$exception")
    types = sorted(e["properties"]["$exception_list"][0]["type"] for e in exceptions)
    assert types == sorted([upstream_error, "ValueError"]), types
    (started,) = server.named("checkout_started")
    assert started["properties"]["downstream"] == [200, 500]
    (work,) = server.named("downstream_work")
    cart = started["properties"]["cart"]
    assert work["properties"]["cart"] == cart  # tags travel as baggage
    assert work["properties"]["$trace_id"] == started["properties"]["$trace_id"]
    (upstream_exc,) = [
        e
        for e in exceptions
        if e["properties"]["cart"] == cart
        and e["properties"]["$exception_list"][0]["type"] == upstream_error
    ]
    assert upstream_exc["properties"]["$request_path"].rstrip("/") == "/checkout"
    (downstream_exc,) = [
        e for e in exceptions if e["properties"]["$exception_list"][0]["type"] == "ValueError"
    ]
    assert downstream_exc["properties"]["downstream_step"] == "fail"
    assert downstream_exc["properties"]["cart"] == cart


def run_upstream(server: CaptureServer, script: str, service: str) -> tuple[int, str]:
    """Run ``script`` under ``opentelemetry-instrument`` with a downstream service, send one
    browser-style ``GET /checkout``; returns (status code, the upstream's stderr)."""
    import requests

    from .procs import stop, wait_until_up

    downstream, downstream_url = start_downstream(server)
    port = free_port()
    env = {
        "PORT": str(port),
        "DOWNSTREAM_URL": downstream_url,
        "POSTHOG_API_KEY": "phc_e2e",
        "POSTHOG_HOST": server.url,
        "OTEL_SERVICE_NAME": service,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    upstream = start([str(BIN / "opentelemetry-instrument"), str(BIN / "python"), script], env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(downstream_url + "/health", downstream)
        wait_until_up(base + "/health", upstream)
        status = requests.get(base + "/checkout", headers=HEADERS, timeout=20).status_code
    finally:
        _, upstream_err = stop(upstream)
        stop(downstream)
    return status, upstream_err
