"""Fixtures shared by the unit tests.

``instrumentor``: a fresh :class:`~posthog_otel.PosthogInstrumentor`, uninstrumented after the
test if the test instrumented it, with the global propagator put back as it was."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import propagate

from posthog_otel import PosthogInstrumentor


@pytest.fixture
def instrumentor() -> Iterator[PosthogInstrumentor]:
    instance = PosthogInstrumentor()
    original = propagate.get_global_textmap()
    yield instance
    if instance.is_instrumented_by_opentelemetry:
        instance.uninstrument()
    propagate.set_global_textmap(original)
