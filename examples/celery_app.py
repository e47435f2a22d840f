"""A Celery app instrumented with posthog-otel, sending to the local sink. No broker server:
the queue is a folder (kombu's filesystem transport).

Needs: ``pip install ./posthog-otel celery``. Then, from the clone:

    posthog-otel sink &                                   # viewer at http://127.0.0.1:8010/
    export POSTHOG_API_KEY=phc_local POSTHOG_HOST=http://127.0.0.1:8010
    POSTHOG_OTEL_CELERY_EVENTS=true celery -A examples.celery_app worker -P solo -l info &
    python -m examples.celery_app                         # enqueues three tasks as user-1

The tasks run with user-1's distinct id, session and ``plan`` tag, restored from the message,
plus ``celery_task_id``/``celery_task_name``; ``charge`` fails and arrives once as
``$exception``; ``send_receipt`` logs a handled error (one ``$exception`` with the log message)
and finishes its work in a thread pool, which keeps the context. With
``POSTHOG_OTEL_CELERY_EVENTS=true`` the worker also sends ``celery task started/success/
failure`` events (and the producer ``celery task published``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from celery import Celery

import posthog_otel as posthog
from posthog_otel import PosthogInstrumentor

PosthogInstrumentor().instrument()  # propagator, spans, and the Celery/threading/logging parts

_queue = Path(os.environ.get("CELERY_QUEUE_DIR", Path(tempfile.gettempdir()) / "posthog-celery"))
_queue.mkdir(parents=True, exist_ok=True)

app = Celery("celery_app", broker="filesystem://")
app.conf.update(
    broker_transport_options={
        "data_folder_in": str(_queue),
        "data_folder_out": str(_queue),
        "control_folder": str(_queue.parent / "control"),  # kombu's pidbox files, not in the cwd
        "store_processed": False,
        "polling_interval": 0.1,
    },
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)
logger = logging.getLogger("examples.celery_app")


@app.task(name="examples.send_receipt")  # explicit names: `python -m` runs it as __main__
def send_receipt(order_id: str) -> None:
    posthog.capture("receipt_sent", properties={"order_id": order_id})
    try:
        raise TimeoutError("mail server slow")
    except TimeoutError:
        logger.exception("receipt for %s delayed", order_id)  # one $exception, handled
    with ThreadPoolExecutor(max_workers=2) as pool:  # the pool keeps the task's context
        pool.submit(posthog.capture, "receipt_archived", properties={"order_id": order_id})


@app.task(name="examples.charge")
def charge(order_id: str) -> None:
    posthog.tag("step", "charge")
    raise RuntimeError(f"card declined for {order_id}")  # one $exception, with the context


def main() -> None:
    with posthog.new_context():
        posthog.identify_context("user-1")
        posthog.set_context_session("session-1")
        posthog.tag("plan", "pro")
        send_receipt.delay("o-1")
        charge.delay("o-2")
        send_receipt.delay("o-3")
    posthog.flush(5)
    print(f"enqueued 3 tasks in {_queue}; start a worker to run them (see the docstring)")


if __name__ == "__main__":
    main()
