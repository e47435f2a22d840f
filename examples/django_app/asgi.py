"""ASGI entry point of the example Django project (``uvicorn examples.django_app.asgi:application``)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from posthog_otel import PosthogInstrumentor

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")
PosthogInstrumentor().instrument()
application = get_asgi_application()
