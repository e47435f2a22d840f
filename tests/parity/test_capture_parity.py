"""capture() and friends: the same calls give the same events as posthog-python."""

from __future__ import annotations

from typing import Any

from .harness import Side, assert_same


def test_plain_capture() -> None:
    assert_same(lambda s: s.client.capture("ev", distinct_id="u1", properties={"a": 1}))


def test_capture_in_a_context() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.identify_context("u2")
            side.module.set_context_session("s1")
            side.module.tag("t", 2)
            return side.client.capture("ev2")

    assert_same(scenario)
