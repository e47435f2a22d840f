"""The base class of our library instrumentors.

``PosthogInstrumentor`` enables every ``posthog_*`` instrumentor itself, and under
``opentelemetry-instrument`` the auto-loader then calls ``instrument()`` on each again. Stock
``BaseInstrumentor`` answers that second call with a warning; ours returns quietly.

    class PosthogRequestsInstrumentor(PosthogLibraryInstrumentor): ...
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

__all__ = ["PosthogLibraryInstrumentor"]


class PosthogLibraryInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    def instrument(self, **kwargs: Any) -> Any:
        if self.is_instrumented_by_opentelemetry:
            return None
        return super().instrument(**kwargs)
