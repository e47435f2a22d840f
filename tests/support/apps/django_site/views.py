"""Views of the test Django project."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse

import posthog_otel as posthog


def _context() -> dict[str, Any]:
    return {
        "distinct_id": posthog.get_context_distinct_id(),
        "session_id": posthog.get_context_session_id(),
        "tags": posthog.get_tags(),
    }


def whoami(request: Any) -> JsonResponse:
    posthog.tag("view", "whoami")
    posthog.capture("page_viewed")
    return JsonResponse(_context())


async def awhoami(request: Any) -> JsonResponse:
    posthog.tag("view", "awhoami")
    posthog.capture("page_viewed")
    return JsonResponse(_context())


def boom(request: Any) -> HttpResponse:
    posthog.tag("step", "charge")
    raise RuntimeError("card declined")


async def aboom(request: Any) -> HttpResponse:
    posthog.tag("step", "acharge")
    raise RuntimeError("async card declined")


def missing(request: Any) -> HttpResponse:
    raise Http404("no such page")


def stream(request: Any) -> StreamingHttpResponse:
    def chunks() -> Iterator[str]:
        for i in range(3):
            posthog.capture("chunk_sent", properties={"i": i})
            yield f"{i}:{posthog.get_context_distinct_id()}\n"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def health(request: Any) -> HttpResponse:
    return HttpResponse("ok")


def checkout(request: Any) -> HttpResponse:
    """The end-to-end view: tag, call a downstream service, enqueue a Celery task (when
    ``CELERY_BROKER_DIR`` names a broker), capture, raise."""
    import requests

    posthog.tag("cart", "c-42")
    downstream = os.environ["DOWNSTREAM_URL"]
    session = requests.Session()
    session.trust_env = False
    work = session.get(downstream + "/work", timeout=10)
    failed = session.get(downstream + "/fail", timeout=10)
    if os.environ.get("CELERY_BROKER_DIR"):
        from tests.support.apps.celery_tasks import record

        record.delay("checkout")
    posthog.capture(
        "checkout_started", properties={"downstream": [work.status_code, failed.status_code]}
    )
    raise RuntimeError("payment failed")


def pp_checkout(request: Any) -> HttpResponse:
    """The posthog-python end-to-end view: only posthog-python's API, a downstream call
    (posthog-otel's requests instrumentation carries the context), a Celery task, a raise."""
    import posthog as posthog_python
    import requests

    posthog_python.tag("cart", "c-77")
    session = requests.Session()
    session.trust_env = False
    work = session.get(os.environ["DOWNSTREAM_URL"] + "/work", timeout=10)
    from tests.support.apps.celery_tasks import record

    record.delay("pp-checkout")
    posthog_python.capture("pp_checkout_started", properties={"downstream": work.status_code})
    raise RuntimeError("payment failed")
