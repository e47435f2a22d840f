"""A Django ASGI app for one ``uvicorn`` process whose events wait in queues until shutdown.

    uvicorn tests.reliability.apps.django_shutdown_app:application

The Django twin of ``fastapi_shutdown_app``: ``PosthogInstrumentor`` with
``flush_interval=60`` (it inserts the contexts middleware and answers lifespan for Django's
``ASGIHandler``); ``GET /order?visitor=…`` identifies the request, captures one event inside a
``capture_span`` and answers the event's uuid. Needs ``POSTHOG_API_KEY`` and ``POSTHOG_HOST``.
"""

from __future__ import annotations

import os
from typing import Any

import django
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import path
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel
from posthog_otel.instrumentor import PosthogInstrumentor


async def order(request: Any) -> JsonResponse:
    posthog_otel.identify_context(request.GET["visitor"])
    with posthog_otel.capture_span("checkout"):
        uuid = posthog_otel.capture("order_placed", properties={"pid": os.getpid()})
    return JsonResponse({"uuid": uuid, "pid": os.getpid()})


async def healthz(request: Any) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [path("order", order), path("healthz", healthz)]

settings.configure(
    DEBUG=False,
    SECRET_KEY="lifespan-test",
    ALLOWED_HOSTS=["127.0.0.1"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)
trace.set_tracer_provider(TracerProvider())
PosthogInstrumentor().instrument(flush_interval=60, shutdown_timeout=5)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402 - after settings

application = get_asgi_application()
