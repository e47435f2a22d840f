"""A global TracerProvider for tests that routes to a per-test SDK provider.

OpenTelemetry lets a process set the global tracer provider once. Code under test that uses
the global provider (``capture_span``, instrumentations) reaches whatever provider the current
test installed with :func:`route_to`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider


class RoutingTracerProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.target: trace.TracerProvider = trace.NoOpTracerProvider()

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return _RoutingTracer(self, args, kwargs)


class _RoutingTracer(trace.Tracer):
    def __init__(self, provider: RoutingTracerProvider, args: Any, kwargs: Any) -> None:
        self._provider = provider
        self._args = args
        self._kwargs = kwargs

    def _tracer(self) -> trace.Tracer:
        return self._provider.target.get_tracer(*self._args, **self._kwargs)

    def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
        return self._tracer().start_span(*args, **kwargs)

    @contextmanager
    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Iterator[trace.Span]:
        with self._tracer().start_as_current_span(*args, **kwargs) as span:
            yield span


ROUTER = RoutingTracerProvider()


def install() -> None:
    trace.set_tracer_provider(ROUTER)


def route_to(provider: TracerProvider | None) -> None:
    ROUTER.target = provider if provider is not None else trace.NoOpTracerProvider()
