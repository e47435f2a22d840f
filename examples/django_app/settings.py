"""Settings of the example Django project (see manage.py for how to run it)."""

from __future__ import annotations

from typing import Any

SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "examples.django_app.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, Any] = {}

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    # With django.contrib.auth, put it after AuthenticationMiddleware: a request without an
    # X-POSTHOG-DISTINCT-ID header is then identified by the logged-in user's pk (+ `email` tag).
    # (Without this line, PosthogInstrumentor would insert it for you.)
    "posthog_otel.instrumentors.django.PosthogContextMiddleware",
]


def posthog_extra_tags(request: Any) -> dict[str, Any]:
    return {"tenant": request.headers.get("X-Tenant", "default")}


# posthog-python's setting names
POSTHOG_MW_CAPTURE_EXCEPTIONS = True
POSTHOG_MW_EXTRA_TAGS = posthog_extra_tags
POSTHOG_MW_REQUEST_FILTER = lambda request: request.path != "/health/"  # noqa: E731
POSTHOG_MW_TRUST_PROXY_HEADERS = False
