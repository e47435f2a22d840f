"""URLs and views for the Django isolation tests (``ROOT_URLCONF`` overridden in the test).

Each view does what the other frameworks' handlers in ``test_isolation`` do: late identity
on odd requests, a ``handler_req`` tag, a random pause, one event from the request and one
from a child (an asyncio task, or a thread that copies the context).
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
import time
from typing import Any

from django.http import HttpResponse
from django.urls import path

import posthog_otel as posthog


def _handle(i: int) -> None:
    if i % 2:
        posthog.identify_context(f"user-{i}")
    posthog.tag("handler_req", i)


def order(request: Any, i: int) -> HttpResponse:
    time.sleep(random.random() * 0.003)
    _handle(i)
    context = contextvars.copy_context()  # what ThreadingInstrumentor does, by hand

    def child() -> None:
        time.sleep(random.random() * 0.003)
        posthog.capture("child_thread", properties={"expect": i})

    thread = threading.Thread(target=context.run, args=(child,))
    thread.start()
    posthog.capture("order_viewed", properties={"expect": i})
    thread.join()
    return HttpResponse("ok")


async def aorder(request: Any, i: int) -> HttpResponse:
    await asyncio.sleep(random.random() * 0.003)
    _handle(i)

    async def child() -> None:
        await asyncio.sleep(random.random() * 0.003)
        posthog.capture("child_task", properties={"expect": i})

    task = asyncio.create_task(child())
    await asyncio.sleep(0)
    posthog.capture("order_viewed", properties={"expect": i})
    await task
    return HttpResponse("ok")


urlpatterns = [
    path("order/<int:i>", order),
    path("aorder/<int:i>", aorder),
]
