"""LLM analytics from the real ``anthropic`` client, instrumented by OpenLLMetry's
``opentelemetry-instrumentation-anthropic``, against the loopback fake model server's Messages
API, inside a context that identifies the user. posthog-python's own Anthropic wrapper
(``posthog.ai.anthropic.Anthropic``) making the same calls is the differential oracle."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import pytest
from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from posthog.ai.anthropic import Anthropic as PosthogAnthropic

import posthog_otel
from posthog_otel import PosthogSpanProcessor
from posthog_otel.testing import CapturedEvents, memory_client
from posthog_otel.testing.fake_model import FakeModelServer
from tests.support.llm_oracle import oracle_events

TOOLS = [
    {
        "name": "get_weather",
        "description": "The weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
Call = Callable[[Any], Any]


def _chat(client: Any) -> Any:
    return client.messages.create(
        model="claude-fake",
        max_tokens=20,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello there"}],
    )


def _tools(client: Any) -> Any:
    return client.messages.create(
        model="claude-fake",
        max_tokens=20,
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,
    )


def _stream(client: Any) -> Any:
    stream = client.messages.create(
        model="claude-fake",
        max_tokens=20,
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
    )
    return [event.type for event in stream]


def _fail(client: Any) -> Any:
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(
            model="fail-429", max_tokens=20, messages=[{"role": "user", "content": "x"}]
        )


CASES: dict[str, Call] = {"chat": _chat, "tools": _tools, "stream": _stream, "429": _fail}


@pytest.fixture(scope="module")
def oracle(model: FakeModelServer) -> dict[str, dict[str, Any]]:
    return oracle_events(
        CASES,
        lambda ph: PosthogAnthropic(
            posthog_client=ph, base_url=model.root_url, api_key="sk-test", max_retries=0
        ),
    )


@pytest.fixture(scope="module")
def ours(model: FakeModelServer) -> Iterator[dict[str, dict[str, Any]]]:
    saved = os.environ.get("TRACELOOP_TRACE_CONTENT")
    os.environ["TRACELOOP_TRACE_CONTENT"] = "true"
    client, events = memory_client()
    sdk = TracerProvider()
    sdk.add_span_processor(PosthogSpanProcessor(client))
    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument(tracer_provider=sdk)
    try:
        yield _calls(model, sdk, events)
    finally:
        instrumentor.uninstrument()
        sdk.shutdown()
        client.shutdown(0)
        if saved is None:
            os.environ.pop("TRACELOOP_TRACE_CONTENT", None)
        else:
            os.environ["TRACELOOP_TRACE_CONTENT"] = saved


def _calls(
    model: FakeModelServer, sdk: TracerProvider, events: CapturedEvents
) -> dict[str, dict[str, Any]]:
    client = anthropic.Anthropic(base_url=model.root_url, api_key="sk-test", max_retries=0)
    found = {}
    for case, call in CASES.items():
        before = len(events)
        with posthog_otel.new_context():
            posthog_otel.identify_context("claude-user")
            posthog_otel.set_context_session("claude-session")
            call(client)
        assert sdk.force_flush(5_000)
        (event,) = [e for e in events.all[before:] if e["event"].startswith("$ai_")]
        found[case] = event
    return found


def test_generations_of_the_contexts_person_with_content(ours: dict[str, dict[str, Any]]) -> None:
    for case, event in ours.items():
        props = event["properties"]
        assert event["event"] == "$ai_generation", case
        assert event["distinct_id"] == "claude-user" and props["$session_id"] == "claude-session"
        assert props["$ai_provider"] == "anthropic", case
    chat = ours["chat"]["properties"]
    assert chat["$ai_input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
    ]
    assert chat["$ai_output_choices"] == [
        {"role": "assistant", "content": [{"type": "text", "text": "You said: hello there"}]}
    ]
    assert (chat["$ai_input_tokens"], chat["$ai_output_tokens"]) == (
        4,
        4,
    )  # cache reads (2) apart, as Anthropic counts
    assert chat["$ai_cache_read_input_tokens"] == 2 and chat["$ai_http_status"] == 200
    stream = ours["stream"]["properties"]
    assert stream["$ai_output_choices"][0]["content"][0]["text"] == "You said: stream me please"
    (call,) = ours["tools"]["properties"]["$ai_output_choices"][0]["content"]
    assert call["function"]["name"] == "get_weather"
    failed = ours["429"]["properties"]
    assert failed["$ai_is_error"] is True and failed["$ai_http_status"] == 429


COMPARED = (
    "$ai_model",
    "$ai_provider",
    "$ai_input",
    "$ai_output_choices",
    "$ai_input_tokens",
    "$ai_output_tokens",
    "$ai_cache_read_input_tokens",
    "$ai_tools",
    "$ai_is_error",
    "$ai_http_status",
    "$ai_stop_reason",
    "$ai_max_tokens",
)


def test_same_ai_properties_as_posthog_pythons_anthropic_wrapper(
    ours: dict[str, dict[str, Any]], oracle: dict[str, dict[str, Any]]
) -> None:
    differences = []
    compared: dict[str, list[str]] = {}
    for case, event in ours.items():
        theirs = oracle[case]
        assert theirs["event"] == event["event"], case
        for key in COMPARED:
            mine, expected = event["properties"].get(key), theirs["properties"].get(key)
            if mine is None or expected is None:
                continue
            compared.setdefault(case, []).append(key)
            if mine != expected:
                differences.append((case, key, mine, expected))
    assert differences == [], "\n".join(map(repr, differences))
    assert {"$ai_input", "$ai_output_choices", "$ai_input_tokens"} <= set(compared["chat"])
    assert "$ai_output_choices" in compared["tools"] and "$ai_is_error" in compared["429"]
    assert "$ai_tools" in compared["tools"] and "$ai_stop_reason" in compared["tools"]
