"""The base class of our library instrumentors.

``PosthogInstrumentor`` enables every ``posthog_*`` instrumentor itself, and under
``opentelemetry-instrument`` the auto-loader then calls ``instrument()`` on each again. Stock
``BaseInstrumentor`` answers that second call with a warning; ours returns quietly.

Switching PostHog off switches the whole family off: with ``posthog`` listed in
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` (the auto-loader still loads ``posthog_flask`` and
the others, which have their own entry points) or ``POSTHOG_OTEL_DISABLED`` set, ``instrument()``
does nothing.

    class PosthogRequestsInstrumentor(PosthogLibraryInstrumentor): ...
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

__all__ = ["PosthogLibraryInstrumentor", "posthog_disabled"]


def posthog_disabled() -> bool:
    """Whether the user switched posthog-otel off (see the module docstring)."""
    disabled = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    if "posthog" in {name.strip() for name in disabled.split(",")}:
        return True
    from posthog_otel.config import env_flag

    try:
        return bool(env_flag("POSTHOG_OTEL_DISABLED"))
    except ValueError:
        return True  # PosthogInstrumentor does not start on an unreadable value either


class PosthogLibraryInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    def instrument(self, **kwargs: Any) -> Any:
        if self.is_instrumented_by_opentelemetry or posthog_disabled():
            return None
        return super().instrument(**kwargs)
