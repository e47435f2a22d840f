"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from posthog_otel.testing.fake_model import FakeModelServer


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    """The loopback fake model server (OpenAI and Anthropic wire formats), one per module."""
    with FakeModelServer() as server:
        yield server
