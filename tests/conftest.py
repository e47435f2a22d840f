from __future__ import annotations

from collections.abc import Iterator

import pytest

from posthog_otel import _default
from posthog_otel.testing import CapturedEvents
from posthog_otel.testing.capture_server import CaptureServer

from .support import routing

routing.install()


@pytest.fixture
def capture_server() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _isolated_default_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without a default client and without PostHog env configuration."""
    for name in ("POSTHOG_API_KEY", "POSTHOG_PROJECT_API_KEY", "POSTHOG_HOST", "POSTHOG_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    previous = _default.set_client(None)
    routing.route_to(None)
    yield
    client = _default.set_client(previous)
    if client is not None and client is not previous:
        client.shutdown(0.5)


@pytest.fixture
def events(posthog_events: CapturedEvents) -> CapturedEvents:
    """The shipped ``posthog_events`` fixture (posthog_otel.testing's pytest plugin), under the
    short name the tests use: an in-memory client installed as the default for the test."""
    return posthog_events
