"""Run the example Django project, sending to the local sink.

Needs: ``pip install ./posthog-otel django`` (ASGI: and ``uvicorn``). Then, from the clone:

    posthog-otel sink &                                   # viewer at http://127.0.0.1:8010/
    POSTHOG_API_KEY=phc_local POSTHOG_HOST=http://127.0.0.1:8010 \\
        python examples/django_app/manage.py runserver --noreload 8000
    curl -H 'X-POSTHOG-DISTINCT-ID: user-1' -H 'X-POSTHOG-SESSION-ID: s-1' localhost:8000/checkout/
    curl -H 'X-POSTHOG-DISTINCT-ID: user-1' localhost:8000/fail/

Under ASGI: ``python -m uvicorn examples.django_app.asgi:application --port 8000``.
``PosthogInstrumentor().instrument()`` (or ``opentelemetry-instrument``) sets up spans,
propagation and exception capture; the middleware in ``settings.MIDDLEWARE`` gives each
request its PostHog context (posthog-python's ``POSTHOG_MW_*`` settings apply).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the project root
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")
    from django.core.management import execute_from_command_line

    from posthog_otel import PosthogInstrumentor

    PosthogInstrumentor().instrument()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
