"""The test Django project with posthog-python's own ``PosthogContextMiddleware``
(``DJANGO_SETTINGS_MODULE=tests.support.apps.django_site.settings_posthog_python``)."""

from __future__ import annotations

from .settings import *  # noqa: F403
from .settings import MIDDLEWARE

MIDDLEWARE = [*MIDDLEWARE, "posthog.integrations.django.PosthogContextMiddleware"]
