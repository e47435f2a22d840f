"""Tags named like ``$ai_*`` properties never steer the mapping of a GenAI span: the event's
``$ai_*`` properties come from the span alone, and a tag the span does not override stays
(also in privacy mode, which drops the span's content, not the caller's tags)."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_otel.spans.genai import AiOptions
from posthog_otel.spans.mapping import Identity, MappingOptions, SpanMapper

MESSAGES = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 10,
    "gen_ai.response.finish_reasons": ("tool_call",),
    "gen_ai.input.messages": MESSAGES,
}


def _span(attributes: dict[str, Any]) -> ReadableSpan:
    provider = TracerProvider()
    finished = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    provider.get_tracer("t").start_span("chat", attributes=attributes).end()
    (span,) = finished.get_finished_spans()
    return span


SPAN = _span(CHAT)


def _event(tags: dict[str, Any], privacy: bool = False, limit: int = 256 * 1024) -> dict[str, Any]:
    options = MappingOptions(ai=AiOptions(privacy_mode=privacy, max_content_bytes=limit))
    (event,) = SpanMapper(options).events_for(SPAN, Identity({"distinct_id": "u"}, tags))
    assert event.name == "$ai_generation"
    return event.properties


def test_tags_do_not_steer_the_mapping() -> None:
    plain = _event({})
    tagged = _event(
        {
            "$ai_is_error": True,  # would hide $ai_http_status 200
            "$ai_provider": "anthropic",  # would turn finish reasons and counts into Anthropic's
            "$ai_cache_read_input_tokens": 4,
            "$ai_base_url": "https://tag.example",  # would hide the span's own base URL
        }
    )
    assert tagged["$ai_http_status"] == plain["$ai_http_status"] == 200
    assert tagged["$ai_stop_reason"] == plain["$ai_stop_reason"] == "tool_calls"
    assert tagged["$ai_input_tokens"] == plain["$ai_input_tokens"] == 10
    assert tagged["$ai_provider"] == "openai"  # the span's own value wins
    assert tagged["$ai_is_error"] is True  # the tag, which the span does not override
    assert "$ai_is_error" not in plain


def test_privacy_mode_keeps_a_tag_named_like_content() -> None:
    props = _event({"$ai_input": "the caller's tag"}, privacy=True)
    assert props["$ai_input"] == "the caller's tag"
    assert "$ai_input" not in _event({}, privacy=True)


def test_the_size_cap_applies_to_the_span_content_only() -> None:
    props = _event({"$ai_output_choices": "x" * 500}, limit=100)
    assert props["$ai_output_choices"] == "x" * 500
    assert props["$ai_input"] == [{"role": "user", "content": "hi"}]


def test_the_same_event_with_or_without_unrelated_tags() -> None:
    plain = _event({})
    tagged = _event({"plan": "pro", "$ai_custom": "kept"})
    assert {
        k: v for k, v in tagged.items() if k not in ("plan", "$ai_custom", "$context_tags")
    } == {k: v for k, v in plain.items() if k != "$context_tags"}
    assert tagged["$ai_custom"] == "kept"
