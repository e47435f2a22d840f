"""The test Django project as a posthog-python app: posthog-python's middleware, its
``posthog.capture`` and its Celery integration, plus one ``PosthogInstrumentor().instrument()``.

    DJANGO_SETTINGS_MODULE=tests.support.apps.django_site.settings_posthog_python \\
        PORT=8000 PH_API_KEY=phc_x PH_HOST=http://127.0.0.1:8010 \\
        python -m tests.support.apps.django_site.serve_posthog_python

posthog-python is configured as its users configure it (``posthog.api_key``/``posthog.host``);
posthog-otel gets no key of its own, so its events go out through posthog-python's client.
"""

from __future__ import annotations

import os

import posthog
from posthog.integrations.celery import PosthogCeleryIntegration

from posthog_otel import PosthogInstrumentor

from . import serve


def main() -> None:
    posthog.api_key = os.environ["PH_API_KEY"]
    posthog.host = os.environ["PH_HOST"]
    posthog.sync_mode = True
    PosthogCeleryIntegration(capture_task_lifecycle_events=False).instrument()
    PosthogInstrumentor().instrument()
    serve.main()


if __name__ == "__main__":
    main()
