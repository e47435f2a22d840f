"""capture_ai(): AI events built by hand go on the wire as posthog-python 7.9x sends them, with
the same return value (the event's uuid), through the module function and the client method."""

from __future__ import annotations

from typing import Any

from .harness import Side, assert_same, run

GENERATION = {
    "$ai_trace_id": "trace-1",
    "$ai_model": "gpt-4o-mini",
    "$ai_provider": "openai",
    "$ai_input": [{"role": "user", "content": "Hi"}],
    "$ai_output_choices": [{"role": "assistant", "content": [{"type": "text", "text": "Hello"}]}],
    "$ai_input_tokens": 3,
    "$ai_output_tokens": 2,
    "$ai_latency": 0.25,
}


def test_client_capture_ai() -> None:
    assert_same(
        lambda s: s.client.capture_ai("$ai_generation", distinct_id="u1", properties=GENERATION)
    )


def test_module_capture_ai_in_a_context_with_tags_and_groups() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.identify_context("u2")
            side.module.tag("plan", "pro")
            return side.module.capture_ai(
                "$ai_embedding",
                properties={"$ai_model": "text-embedding-3-small"},
                groups={"company": "acme"},
            )

    assert_same(scenario)


def test_capture_ai_without_a_person_is_personless() -> None:
    assert_same(lambda s: s.client.capture_ai("$ai_trace", properties={"$ai_trace_id": "t"}))


def test_capture_ai_returns_the_uuid_it_sent() -> None:
    uuid = "0190b4a4-93f6-7d0e-8b3c-3e0d5f6a7b8c"
    theirs, ours = run(lambda s: s.client.capture_ai("$ai_span", distinct_id="u", uuid=uuid))
    assert theirs.result == ours.result == uuid
    assert [e["uuid"] for e in ours.events] == [uuid]


def test_capture_ai_endpoint_is_a_listed_difference() -> None:
    """posthog-python posts capture_ai() to its AI endpoint; we post it with every other event
    to /batch/ (as its AI wrappers do by default). README: "Differences from posthog-python"."""
    paths: dict[str, list[str]] = {}

    def scenario(side: Side) -> Any:
        result = side.client.capture_ai("$ai_generation", distinct_id="u")
        side.client.flush()
        paths[side.name] = [r.path for r in side.server.requests]
        return result

    run(scenario)
    assert paths["posthog-python"] == ["/i/v0/ai/batch/"]
    assert [path.split("?")[0] for path in paths["posthog-otel"]] == ["/batch/"]
