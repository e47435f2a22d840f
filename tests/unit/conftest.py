"""Fixtures shared by the unit tests.

``instrumentor``: a fresh :class:`~posthog_otel.PosthogInstrumentor`, uninstrumented after the
test if the test instrumented it, with the global propagator put back as it was.

Every unit test starts with an empty store of GenAI content log records
(:data:`posthog_otel.spans.genai_logs.CONTENT`): records a test leaves unclaimed must not join
another test's span."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import propagate

from posthog_otel import PosthogInstrumentor
from posthog_otel.spans import genai_logs


@pytest.fixture(autouse=True)
def _empty_genai_content(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(genai_logs, "CONTENT", genai_logs.ContentStore())


@pytest.fixture
def instrumentor() -> Iterator[PosthogInstrumentor]:
    instance = PosthogInstrumentor()
    original = propagate.get_global_textmap()
    yield instance
    if instance.is_instrumented_by_opentelemetry:
        instance.uninstrument()
    propagate.set_global_textmap(original)
