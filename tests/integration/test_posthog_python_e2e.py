"""posthog-python apps under PosthogInstrumentor, end to end, in real processes.

A Django app using posthog-python's own ``PosthogContextMiddleware``, ``posthog.capture`` and
its Celery integration, plus ``PosthogInstrumentor().instrument()``, serves a browser request:
it calls a downstream service that uses posthog-otel only, enqueues a Celery task run by a real
worker with posthog-python's Celery integration only, and raises. Every event of every process
carries the browser's distinct id and session; the view's tag reaches the downstream and the
task; the exception is captured once.
"""

from __future__ import annotations

from pathlib import Path

import requests

from posthog_otel.testing.capture_server import CaptureServer
from tests.support.apps.celery_tasks import make_app
from tests.support.e2e import HEADERS, start_celery_worker, start_downstream
from tests.support.procs import BIN, free_port, start, stop, wait_until_up
from tests.support.waiting import wait_until


def test_django_with_posthog_python_downstream_and_celery(
    capture_server: CaptureServer, tmp_path: Path
) -> None:
    broker = tmp_path / "broker"
    make_app(broker)
    worker = start_celery_worker(capture_server, broker, "posthog_python")
    downstream, downstream_url = start_downstream(capture_server)
    port = free_port()
    env = {
        "PORT": str(port),
        "DJANGO_SETTINGS_MODULE": "tests.support.apps.django_site.settings_posthog_python",
        "CELERY_BROKER_DIR": str(broker),
        "DOWNSTREAM_URL": downstream_url,
        "PH_API_KEY": "phc_django",
        "PH_HOST": capture_server.url,
    }
    upstream = start(
        [str(BIN / "python"), "-m", "tests.support.apps.django_site.serve_posthog_python"], env
    )
    base = f"http://127.0.0.1:{port}"
    names = {"pp_checkout_started", "downstream_work", "task_ran", "$exception"}
    try:
        wait_until_up(downstream_url + "/health", downstream)
        wait_until_up(base + "/health/", upstream)
        response = requests.get(base + "/pp-checkout/", headers=HEADERS, timeout=20)
        wait_until(
            lambda: names <= {e["event"] for e in capture_server.events} or None,
            timeout=30,
            procs={"the Celery worker": worker, "the Django app": upstream},
            what=lambda: f"{sorted(names)}: {capture_server.events}",
        )
    finally:
        _, upstream_err = stop(upstream)
        stop(downstream)
        stop(worker)
    assert response.status_code == 500, upstream_err
    events = capture_server.events
    assert {e["distinct_id"] for e in events} == {"browser-user"}, events
    assert {e["properties"].get("$session_id") for e in events} == {"browser-session"}, events
    by_name = {e["event"]: e for e in events}
    started = by_name["pp_checkout_started"]
    assert started["properties"]["cart"] == "c-77"
    assert started["properties"]["$lib"] == "posthog-python"
    assert by_name["downstream_work"]["properties"]["cart"] == "c-77"  # baggage, posthog-otel
    assert by_name["downstream_work"]["properties"]["$lib"] == "posthog-otel"
    task = by_name["task_ran"]
    assert task["properties"]["cart"] == "c-77"  # posthog-python's Celery headers
    assert task["properties"]["seen_distinct_id"] == "browser-user"
    assert task["properties"]["$lib"] == "posthog-python"
    exceptions = [e for e in events if e["event"] == "$exception"]
    assert len(exceptions) == 1, exceptions
    (exc,) = exceptions
    assert exc["properties"]["$exception_list"][0]["type"] == "RuntimeError"
    assert exc["properties"]["cart"] == "c-77"
