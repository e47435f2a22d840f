"""Views of the example Django project: sync and async, an event, a span, an exception."""

from __future__ import annotations

import asyncio
from typing import Any

from django.http import HttpResponse, JsonResponse
from django.urls import path

import posthog_otel as posthog
from posthog_otel import capture_span


def checkout(request: Any) -> JsonResponse:
    posthog.tag("plan", "pro")  # on every event of this request
    with capture_span("payment_authorized", provider="demo-bank"):
        pass
    posthog.capture("order_completed")
    return JsonResponse({"status": "paid", "user": posthog.get_context_distinct_id()})


async def recommendations(request: Any) -> JsonResponse:
    await asyncio.sleep(0)
    posthog.capture("recommendations_viewed")  # under ASGI the context is the same
    return JsonResponse({"items": ["socks"], "user": posthog.get_context_distinct_id()})


def fail(request: Any) -> HttpResponse:
    raise RuntimeError("captured once as $exception, with the request's person and session")


def health(request: Any) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("checkout/", checkout),
    path("recommendations/", recommendations),
    path("fail/", fail),
    path("health/", health),
]
