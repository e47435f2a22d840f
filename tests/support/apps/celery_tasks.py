"""A Celery app on a filesystem broker for the Celery tests (producer and real worker).

The broker is a folder (``CELERY_BROKER_DIR``); nothing goes over the network. The worker
process picks its instrumentation from ``CELERY_TEST_MODE``:

* ``ours``: ``PosthogInstrumentor().instrument()`` (processor, propagator, Celery, threads,
  logging);
* ``contrib_first`` / ``ours_first``: the same plus contrib's ``CeleryInstrumentor``,
  instrumented before / after ours;
* ``posthog_python``: posthog-python's own Celery integration only (no posthog-otel).

Tasks capture with posthog-otel, or with posthog-python in ``posthog_python`` mode.
"""

from __future__ import annotations

import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from celery import Celery

_MODE = os.environ.get("CELERY_TEST_MODE", "")


def make_app(broker_dir: str | os.PathLike[str]) -> Celery:
    folder = Path(broker_dir)
    (folder / "queue").mkdir(parents=True, exist_ok=True)
    # messages are written atomically (the stock transport lets a worker read a half-written one)
    celery_app = Celery(
        "celery_tasks",
        broker="filesystem://",
        broker_transport="tests.support.apps.atomic_fs:Transport",
    )
    celery_app.conf.update(
        broker_transport_options={
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),  # kombu's pidbox files, not in the cwd
            "store_processed": False,
            "polling_interval": 0.05,
        },
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        worker_prefetch_multiplier=1,
    )
    return celery_app


app = make_app(
    os.environ.get("CELERY_BROKER_DIR") or Path(tempfile.gettempdir()) / "posthog-otel-celery-tests"
)
_logger = logging.getLogger("tests.celery_tasks")

_posthog_python: Any = None


def _setup_worker() -> None:
    global _posthog_python
    if _MODE == "posthog_python":
        import posthog
        from posthog.integrations.celery import PosthogCeleryIntegration

        _posthog_python = posthog.Client(
            os.environ["POSTHOG_API_KEY"], host=os.environ["POSTHOG_HOST"], sync_mode=True
        )
        PosthogCeleryIntegration(
            client=_posthog_python, capture_task_lifecycle_events=False
        ).instrument()
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    from posthog_otel import PosthogInstrumentor

    if _MODE == "contrib_first":
        CeleryInstrumentor().instrument()
    PosthogInstrumentor().instrument()
    if _MODE == "ours_first":
        CeleryInstrumentor().instrument()


if _MODE:  # set for the worker process only
    _setup_worker()


def _capture(event: str, properties: dict[str, Any]) -> None:
    if _posthog_python is not None:
        _posthog_python.capture(event, properties=properties)
        return
    import posthog_otel

    posthog_otel.capture(event, properties=properties)


def _identity() -> dict[str, Any]:
    if _posthog_python is not None:
        from posthog import contexts

        return {"seen_distinct_id": contexts.get_context_distinct_id(), "seen_tags": {}}
    import posthog_otel

    return {
        "seen_distinct_id": posthog_otel.get_context_distinct_id(),
        "seen_session_id": posthog_otel.get_context_session_id(),
        "seen_tags": posthog_otel.get_tags(),
    }


@app.task(name="tests.record")
def record(label: str) -> None:
    """Captures ``task_ran`` in the task and ``thread_ran`` from a thread pool."""
    _capture("task_ran", {"label": label, **_identity()})
    if _posthog_python is None:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(_capture, "thread_ran", {"label": label, **_identity()}).result()


@app.task(name="tests.fail")
def fail(label: str) -> None:
    import posthog_otel

    posthog_otel.tag("step", "charging")
    raise ValueError(f"card declined: {label}")


@app.task(name="tests.log_and_fail")
def log_and_fail(label: str) -> None:
    """Logs the exception with ``logger.exception`` and re-raises it: one ``$exception``."""
    try:
        raise KeyError(label)
    except KeyError:
        _logger.exception("lookup failed for %s", label)
        raise


@app.task(name="tests.flaky", bind=True, max_retries=2)
def flaky(self: Any, label: str) -> None:
    if self.request.retries == 0:
        raise self.retry(exc=TimeoutError("upstream slow"), countdown=0)
    _capture("flaky_done", {"label": label, **_identity()})


@app.task(name="tests.fan_out")
def fan_out(label: str) -> None:
    """Enqueues ``record`` from inside a task: the context goes on to the next task."""
    import posthog_otel

    posthog_otel.tag("stage", "fan_out")
    record.delay(label + "-child")
