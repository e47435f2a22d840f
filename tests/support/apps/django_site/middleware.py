"""Test-only middleware: one that raises, and a recording subclass of ours."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from posthog_otel.instrumentors.django import PosthogContextMiddleware


class ExplodingMiddleware:
    """Raises on ``/mw-boom/`` (an exception that never reaches ``process_exception``)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        if request.path == "/mw-boom/":
            import posthog_otel as posthog

            posthog.tag("step", "middleware")
            raise KeyError("middleware failed")
        return self.get_response(request)


INSTANCES: list[PosthogContextMiddleware] = []


class RecordingPosthogMiddleware(PosthogContextMiddleware):
    """Ours, remembering its instances (to see which mode Django gave each)."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        super().__init__(get_response)
        INSTANCES.append(self)
