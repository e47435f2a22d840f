"""Properties PostHog's LLM analytics documents beyond the basics: ``$ai_http_status``,
``$ai_base_url`` from ``server.address``/``server.port``, ``$ai_lib``/``$ai_lib_version``;
real SDK spans through the span processor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode

from posthog_otel import PosthogSpanProcessor, __version__
from posthog_otel.testing import CapturedEvents, memory_client

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
}


@pytest.fixture
def setup() -> Iterator[tuple[TracerProvider, CapturedEvents]]:
    client, events = memory_client()
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(client))
    yield provider, events
    provider.shutdown()
    client.shutdown(0)


def _one(
    setup: tuple[TracerProvider, CapturedEvents],
    attributes: dict[str, Any],
    error: str | None = None,
    exception: Exception | None = None,
) -> dict[str, Any]:
    provider, events = setup
    before = len(events)
    with provider.get_tracer("t").start_as_current_span(
        "chat", attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        if exception is not None:
            span.record_exception(exception)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
    assert provider.force_flush(5_000)
    (event,) = [e for e in events.all[before:] if e["event"].startswith("$ai_")]
    return dict(event["properties"])


class RateLimitError(Exception):
    pass


@pytest.mark.parametrize(
    ("extra", "error", "exception", "expected"),
    [
        ({}, None, None, 200),  # a call that did not fail
        ({"http.response.status_code": 201}, None, None, 201),  # recorded on the span
        ({"http.response.status_code": 503}, "down", None, 503),
        ({"error.type": "429"}, "throttled", None, 429),  # the conventions' numeric error.type
        ({}, "Error code: 500 - boom", None, 500),  # the openai/anthropic SDKs' message
        ({}, "failed", RuntimeError("Error code: 404 - no such model"), 404),
        ({"error.type": "<class 'openai.RateLimitError'>"}, "slow down", None, 429),
        ({}, "failed", RateLimitError("slow down"), 429),  # the SDKs' error class names
        ({"error.type": "TimeoutError"}, "timed out", None, None),  # nothing names a status
    ],
)
def test_http_status(
    setup: tuple[TracerProvider, CapturedEvents],
    extra: dict[str, Any],
    error: str | None,
    exception: Exception | None,
    expected: int | None,
) -> None:
    props = _one(setup, {**CHAT, **extra}, error, exception)
    assert props.get("$ai_http_status") == expected
    assert props.get("$ai_is_error", False) is (error is not None)


def test_no_http_status_on_tools_and_agents(setup: tuple[TracerProvider, CapturedEvents]) -> None:
    props = _one(setup, {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "x"})
    assert "$ai_http_status" not in props and "$ai_base_url" not in props


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ({"server.address": "api.openai.com", "server.port": 443}, "https://api.openai.com"),
        ({"server.address": "api.openai.com"}, "https://api.openai.com"),
        ({"server.address": "127.0.0.1", "server.port": 8123}, "http://127.0.0.1:8123"),
        ({"server.address": "localhost", "server.port": 80}, "http://localhost"),
        (
            {"server.address": "llm.internal", "server.port": 8443, "url.scheme": "https"},
            "https://llm.internal:8443",
        ),
        ({"server.address": "::1", "server.port": 9000}, "http://[::1]:9000"),
        ({}, None),
        (  # the instrumentation's own base URL wins
            {"server.address": "x.example", "gen_ai.openai.api_base": "https://x.example/v1/"},
            "https://x.example/v1/",
        ),
    ],
)
def test_base_url(
    setup: tuple[TracerProvider, CapturedEvents], address: dict[str, Any], expected: str | None
) -> None:
    assert _one(setup, {**CHAT, **address}).get("$ai_base_url") == expected


def test_lib_and_version_on_every_ai_event(setup: tuple[TracerProvider, CapturedEvents]) -> None:
    for attributes in (CHAT, {"gen_ai.operation.name": "invoke_agent"}):
        props = _one(setup, attributes)
        assert (props["$ai_lib"], props["$ai_lib_version"]) == ("posthog-otel", __version__)
        assert props["$lib"] == "posthog-otel"  # the event's own library property is unchanged


def test_anthropic_counts_and_shapes(setup: tuple[TracerProvider, CapturedEvents]) -> None:
    anthropic = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude",
        "gen_ai.usage.input_tokens": 10,  # the conventions' count: cache reads and writes in it
        "gen_ai.usage.cache_read.input_tokens": 3,
        "gen_ai.usage.cache_creation.input_tokens": 2,
        "gen_ai.response.finish_reasons": ("length",),
        "gen_ai.output.messages": '[{"role": "assistant", "parts": [{"type": "tool_call", '
        '"id": "t1", "name": "f", "arguments": {"a": 1}}]}]',
    }
    props = _one(setup, anthropic)
    assert props["$ai_input_tokens"] == 5 and props["$ai_cache_read_input_tokens"] == 3
    assert props["$ai_stop_reason"] == "max_tokens"
    (call,) = props["$ai_output_choices"][0]["content"]
    assert call["function"]["arguments"] == {"a": 1}
    # a count that cannot include the cache is left as recorded
    props = _one(setup, {**anthropic, "gen_ai.usage.input_tokens": 4})
    assert props["$ai_input_tokens"] == 4
    openai = {**anthropic, "gen_ai.provider.name": "openai"}
    props = _one(setup, openai)  # OpenAI's prompt count includes cached tokens, as recorded
    assert props["$ai_input_tokens"] == 10 and props["$ai_stop_reason"] == "length"
    assert props["$ai_output_choices"][0]["content"][0]["function"]["arguments"] == '{"a":1}'


def test_tool_response_part_without_its_response_keeps_the_event(
    setup: tuple[TracerProvider, CapturedEvents],
) -> None:
    messages = [
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1"}]},
        {"role": "user", "parts": [{"type": "text", "content": "and now?"}]},
    ]
    props = _one(setup, {**CHAT, "gen_ai.input.messages": json.dumps(messages)})
    assert props["$ai_input"] == [
        {"role": "tool", "content": None, "tool_call_id": "call_1"},
        {"role": "user", "content": "and now?"},
    ]


@pytest.mark.parametrize("tool_calls", [7, "call_1", {"id": "call_1"}])
def test_anthropic_message_with_malformed_tool_calls_keeps_the_event(
    setup: tuple[TracerProvider, CapturedEvents], tool_calls: Any
) -> None:
    messages = [{"role": "assistant", "content": "hi", "tool_calls": tool_calls}]
    attributes = {
        **CHAT,
        "gen_ai.provider.name": "anthropic",
        "gen_ai.input.messages": json.dumps(messages),
    }
    props = _one(setup, attributes)
    assert props["$ai_model"] == "gpt-4o-mini"
    assert "$ai_input" in props


@pytest.mark.parametrize(
    "name", ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions"]
)
def test_json_nested_too_deep_to_decode_keeps_the_event(
    setup: tuple[TracerProvider, CapturedEvents], name: str
) -> None:
    props = _one(setup, {**CHAT, name: "[" * 100_000})
    assert props["$ai_model"] == "gpt-4o-mini"
    assert props["$ai_provider"] == "openai"
