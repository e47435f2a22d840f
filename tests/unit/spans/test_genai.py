"""GenAI spans become PostHog LLM analytics events: real SDK spans through the processor and
the exporter, every attribute source, event types, nesting, privacy, size caps, switches."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

import posthog_otel as posthog
from posthog_otel import PosthogSpanExporter, PosthogSpanProcessor
from posthog_otel.spans.genai import TRUNCATED_MARKER
from posthog_otel.testing import CapturedEvents, memory_client

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.request.max_tokens": 50,
}
INPUT = [{"role": "user", "parts": [{"type": "text", "content": "What is 2+2?"}]}]
OUTPUT = [
    {"role": "assistant", "parts": [{"type": "text", "content": "4"}], "finish_reason": "stop"}
]


def _provider(client: Any, *, exporter: bool = False) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "chat-api"}))
    if exporter:
        # exported together, so a span's AI parent is found among its batch
        provider.add_span_processor(BatchSpanProcessor(PosthogSpanExporter(client)))
    else:
        provider.add_span_processor(PosthogSpanProcessor(client))
    return provider


@pytest.fixture
def setup() -> Iterator[tuple[TracerProvider, CapturedEvents]]:
    client, events = memory_client()
    provider = _provider(client)
    yield provider, events
    provider.shutdown()
    client.shutdown(0)


def _chat(tracer: Any, **extra: Any) -> None:
    with tracer.start_as_current_span(
        "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={**CHAT, **extra}
    ) as span:
        span.set_attributes(
            {
                "gen_ai.input.messages": json.dumps(INPUT),
                "gen_ai.output.messages": json.dumps(OUTPUT),
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 3,
                "gen_ai.usage.cache_read.input_tokens": 8,
                "gen_ai.response.finish_reasons": ("stop",),
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.conversation.id": "conv-7",
            }
        )


def _flush(provider: TracerProvider) -> None:
    assert provider.force_flush(5_000)


def test_chat_span_inside_a_request_is_a_generation_of_the_requests_person(
    setup: tuple[TracerProvider, CapturedEvents],
) -> None:
    provider, events = setup
    tracer = provider.get_tracer("test")
    with posthog.new_context():
        posthog.identify_context("user-42")
        posthog.set_context_session("session-9")
        posthog.tag("plan", "pro")
        with tracer.start_as_current_span("GET /ask", kind=SpanKind.SERVER) as request:
            _chat(tracer)
            trace_id = format(request.get_span_context().trace_id, "032x")
    _flush(provider)
    [generation] = events.named("$ai_generation")
    props = generation["properties"]
    assert generation["distinct_id"] == "user-42"
    assert props["$session_id"] == "session-9"
    assert props["plan"] == "pro"
    assert props["$ai_trace_id"] == trace_id == props["$trace_id"]
    assert props["$ai_model"] == "gpt-4o-mini"
    assert props["$ai_provider"] == "openai"
    assert props["$ai_input"] == [{"role": "user", "content": "What is 2+2?"}]
    assert props["$ai_output_choices"] == [
        {"role": "assistant", "content": [{"type": "text", "text": "4"}]}
    ]
    assert (props["$ai_input_tokens"], props["$ai_output_tokens"]) == (12, 3)
    assert props["$ai_cache_read_input_tokens"] == 8
    assert props["$ai_temperature"] == 0.2 and props["$ai_max_tokens"] == 50
    assert props["$ai_model_parameters"] == {"temperature": 0.2, "max_tokens": 50}
    assert props["$ai_stop_reason"] == "stop"
    assert props["$ai_session_id"] == "conv-7"
    assert props["$ai_latency"] > 0
    assert "$ai_is_error" not in props
    assert "$ai_parent_id" not in props  # no AI ancestor
    assert not any(key.startswith(("gen_ai.", "posthog.")) for key in props)
    # the request's own event is still there, and the generation is not a plain span event
    assert [e["event"] for e in events] == ["$ai_generation", "GET /ask"]


def test_generation_without_any_context_is_personless(
    setup: tuple[TracerProvider, CapturedEvents],
) -> None:
    provider, events = setup
    _chat(provider.get_tracer("test"))
    _flush(provider)
    [generation] = events.named("$ai_generation")
    assert generation["properties"]["$process_person_profile"] is False


def test_openllmetry_indexed_attributes(setup: tuple[TracerProvider, CapturedEvents]) -> None:
    provider, events = setup
    attributes = {
        "gen_ai.system": "OpenAI",
        "llm.request.type": "chat",
        "gen_ai.request.model": "gpt-4o",
        "llm.is_streaming": True,
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "Be brief.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Weather in Paris?",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.finish_reason": "tool_calls",
        "gen_ai.completion.0.tool_calls.0.id": "call_1",
        "gen_ai.completion.0.tool_calls.0.name": "get_weather",
        "gen_ai.completion.0.tool_calls.0.arguments": '{"city":"Paris"}',
        "llm.request.functions.0.name": "get_weather",
        "llm.request.functions.0.description": "Weather by city",
        "llm.request.functions.0.parameters": '{"type":"object"}',
        "gen_ai.usage.prompt_tokens": 20,
        "gen_ai.usage.completion_tokens": 7,
    }
    with provider.get_tracer("t").start_as_current_span("openai.chat", attributes=attributes):
        pass
    _flush(provider)
    [generation] = events.named("$ai_generation")
    props = generation["properties"]
    assert props["$ai_provider"] == "openai"
    assert props["$ai_stream"] is True
    assert props["$ai_input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    assert props["$ai_output_choices"] == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "function",
                    "id": "call_1",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        }
    ]
    assert props["$ai_tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": {"type": "object"},
            },
        }
    ]
    assert (props["$ai_input_tokens"], props["$ai_output_tokens"]) == (20, 7)


def test_content_from_span_events(setup: tuple[TracerProvider, CapturedEvents]) -> None:
    provider, events = setup
    with provider.get_tracer("t").start_as_current_span("chat m", attributes=CHAT) as span:
        span.add_event("gen_ai.system.message", {"content": "Be kind."})
        span.add_event("gen_ai.user.message", {"content": "Hi"})
        span.add_event(
            "gen_ai.choice",
            {
                "index": 0,
                "finish_reason": "stop",
                "message": '{"role":"assistant","content":"Hello"}',
            },
        )
    _flush(provider)
    props = events.named("$ai_generation")[0]["properties"]
    assert props["$ai_input"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
    ]
    assert props["$ai_output_choices"] == [
        {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]}
    ]


def test_semconv_system_instructions_tools_and_tool_call_messages(
    setup: tuple[TracerProvider, CapturedEvents],
) -> None:
    provider, events = setup
    messages = [
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "c1", "name": "weather", "arguments": {"city": "Oslo"}}
            ],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "-3C"}]},
    ]
    with provider.get_tracer("t").start_as_current_span("chat", attributes=CHAT) as span:
        span.set_attribute("gen_ai.input.messages", json.dumps(messages))
        span.set_attribute(
            "gen_ai.system_instructions", json.dumps([{"type": "text", "content": "Be terse"}])
        )
        span.set_attribute(
            "gen_ai.tool.definitions",
            json.dumps([{"type": "function", "name": "weather", "parameters": {}}]),
        )
    _flush(provider)
    props = events.named("$ai_generation")[0]["properties"]
    assert props["$ai_input"] == [
        {"role": "system", "content": "Be terse"},
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "type": "function",
                    "id": "c1",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "content": "-3C", "tool_call_id": "c1"},
    ]
    assert props["$ai_tools"] == [
        {"type": "function", "function": {"name": "weather", "parameters": {}}}
    ]
    assert "$ai_output_choices" not in props  # not recorded: never invented


def test_embeddings_become_ai_embedding(setup: tuple[TracerProvider, CapturedEvents]) -> None:
    provider, events = setup
    attributes = {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "text-embedding-3-small",
        "gen_ai.usage.input_tokens": 5,
    }
    with provider.get_tracer("t").start_as_current_span("embeddings", attributes=attributes):
        pass
    _flush(provider)
    [event] = events.named("$ai_embedding")
    assert event["properties"]["$ai_model"] == "text-embedding-3-small"
    assert event["properties"]["$ai_input_tokens"] == 5


def _agent_run(tracer: Any) -> tuple[str, str]:
    agent_attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "planner",
        "gen_ai.provider.name": "openai",
    }
    with tracer.start_as_current_span("invoke_agent planner", attributes=agent_attributes) as a:
        _chat(tracer)
        tool = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "weather",
            "gen_ai.tool.call.arguments": '{"city":"Oslo"}',
            "gen_ai.tool.call.result": "-3C",
        }
        with tracer.start_as_current_span("execute_tool weather", attributes=tool):
            pass
        context = a.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@pytest.mark.parametrize("through", ["processor", "exporter"])
def test_agent_is_a_trace_with_nested_spans_and_generations(through: str) -> None:
    client, events = memory_client()
    provider = _provider(client, exporter=through == "exporter")
    try:
        trace_id, agent_id = _agent_run(provider.get_tracer("t"))
        _flush(provider)
    finally:
        provider.shutdown()
    names = sorted(e["event"] for e in events)
    assert names == ["$ai_generation", "$ai_span", "$ai_trace"]
    trace = events.named("$ai_trace")[0]["properties"]
    assert trace["$ai_trace_id"] == trace_id and trace["$ai_span_id"] == agent_id
    assert trace["$ai_agent_name"] == "planner"
    tool = events.named("$ai_span")[0]["properties"]
    assert tool["$ai_input_state"] == {"city": "Oslo"} and tool["$ai_output_state"] == "-3C"
    assert tool["$ai_tool_name"] == "weather"
    assert tool["$ai_parent_id"] == agent_id
    generation = events.named("$ai_generation")[0]["properties"]
    assert generation["$ai_trace_id"] == trace_id
    assert generation["$ai_parent_id"] == agent_id


def test_errors_are_flagged(setup: tuple[TracerProvider, CapturedEvents]) -> None:
    provider, events = setup
    tracer = provider.get_tracer("t")
    with pytest.raises(RuntimeError), tracer.start_as_current_span("chat", attributes=CHAT) as span:
        span.set_attribute("error.type", "RateLimitError")
        span.set_status(Status(StatusCode.ERROR, "429 Too Many Requests"))
        raise RuntimeError("rate limited")
    _flush(provider)
    props = events.named("$ai_generation")[0]["properties"]
    assert props["$ai_is_error"] is True
    assert props["$ai_error"] == "RuntimeError: rate limited"  # the SDK sets it on escape


@pytest.mark.parametrize("option", ["ai_privacy_mode", "privacy_mode"])
def test_privacy_mode_drops_content_but_keeps_the_rest(option: str) -> None:
    client, events = memory_client(**{option: True})
    provider = _provider(client)
    try:
        _chat(provider.get_tracer("t"))
        _agent_run(provider.get_tracer("t"))
        _flush(provider)
    finally:
        provider.shutdown()
    for event in events:
        props = event["properties"]
        for key in ("$ai_input", "$ai_output_choices", "$ai_input_state", "$ai_output_state"):
            assert key not in props
    props = events.named("$ai_generation")[0]["properties"]
    assert props["$ai_input_tokens"] == 12 and props["$ai_model"] == "gpt-4o-mini"


def test_content_over_the_cap_is_cut_with_a_marker_and_the_event_kept() -> None:
    client, events = memory_client(ai_max_content_bytes=1024)
    provider = _provider(client)
    big = [{"role": "user", "parts": [{"type": "text", "content": "é" * 5000}]}]
    try:
        with provider.get_tracer("t").start_as_current_span("chat", attributes=CHAT) as span:
            span.set_attribute("gen_ai.input.messages", json.dumps(big))
            span.set_attribute("gen_ai.output.messages", json.dumps(OUTPUT))
        _flush(provider)
    finally:
        provider.shutdown()
    props = events.named("$ai_generation")[0]["properties"]
    assert isinstance(props["$ai_input"], str) and props["$ai_input"].endswith(TRUNCATED_MARKER)
    assert len(props["$ai_input"].encode()) <= 1024
    assert props["$ai_content_truncated"] is True
    assert props["$ai_output_choices"][0]["content"][0]["text"] == "4"  # small: untouched


def test_capture_ai_off_by_option_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for options, env in (({"capture_ai_spans": False}, None), ({}, "false")):
        if env is not None:
            monkeypatch.setenv("POSTHOG_OTEL_CAPTURE_AI", env)
        client, events = memory_client(**options)
        provider = _provider(client)
        try:
            _chat(provider.get_tracer("t"))
            _flush(provider)
        finally:
            provider.shutdown()
        assert events.named("$ai_generation") == []
    monkeypatch.setenv("POSTHOG_OTEL_CAPTURE_AI", "true")
    client, _ = memory_client(capture_ai_spans=False)
    assert client.settings.capture_ai_spans is False  # the argument wins over the environment


def test_posthog_ai_attributes_win(setup: tuple[TracerProvider, CapturedEvents]) -> None:
    provider, events = setup
    _chat(
        provider.get_tracer("t"),
        **{
            "posthog.ai.model": "my-fine-tune",
            "posthog.ai.input": json.dumps([{"role": "user", "content": "redacted"}]),
            "posthog.ai.event": "$ai_generation",
        },
    )
    _flush(provider)
    props = events.named("$ai_generation")[0]["properties"]
    assert props["$ai_model"] == "my-fine-tune"
    assert props["$ai_input"] == [{"role": "user", "content": "redacted"}]
