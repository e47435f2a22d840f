"""GenAI content never leaks as plain event properties: with LLM analytics off and
``capture_spans="all"``, with privacy mode on, through the processor, the exporter and the
bridge (spans and log records). Every path is checked by searching the whole captured event
for a secret written into every content attribute."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

import posthog_otel as posthog
from posthog_otel import PosthogSpanExporter, PosthogSpanProcessor
from posthog_otel.bridge.pipeline import Pipeline
from posthog_otel.bridge.settings import BridgeSettings
from posthog_otel.otlp.responses import JSON, PROTOBUF
from posthog_otel.spans.genai import is_genai_content
from posthog_otel.testing import CapturedEvents, memory_client

SECRET = "hunter2-secret-prompt"
_MESSAGE = json.dumps([{"role": "user", "parts": [{"type": "text", "content": SECRET}]}])
CONTENT = {  # every way an instrumentation records content on a span
    "gen_ai.input.messages": _MESSAGE,
    "gen_ai.output.messages": _MESSAGE,
    "gen_ai.system_instructions": json.dumps([{"type": "text", "content": SECRET}]),
    "gen_ai.tool.definitions": json.dumps([{"name": "f", "description": SECRET}]),
    "gen_ai.prompt.0.role": "user",
    "gen_ai.prompt.0.content": SECRET,
    "gen_ai.completion.0.content": SECRET,
    "gen_ai.prompt": SECRET,
    "gen_ai.completion": SECRET,
    "llm.prompts": SECRET,
    "llm.request.functions.0.description": SECRET,
    "traceloop.entity.input": SECRET,
    "gen_ai.some_future.content": SECRET,  # an unknown name is content: fail closed
}
METADATA = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 7,
}
TOOL = {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "lookup",
    "gen_ai.tool.call.arguments": json.dumps({"q": SECRET}),
    "gen_ai.tool.call.result": SECRET,
}


def _run(provider: TracerProvider) -> None:
    """A request whose handler runs a workflow step, a chat and a tool, all with content."""
    tracer = provider.get_tracer("t")
    with posthog.new_context():
        posthog.identify_context("user-1")
        with tracer.start_as_current_span(
            "workflow", attributes={"traceloop.entity.input": SECRET}
        ):
            with tracer.start_as_current_span("chat", attributes={**METADATA, **CONTENT}) as s:
                s.add_event("gen_ai.user.message", {"content": SECRET})
            with tracer.start_as_current_span("tool", attributes=TOOL):
                pass
    assert provider.force_flush(5_000)


def _leaks(events: CapturedEvents, allowed: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    found = []
    for event in events:
        for key, value in event["properties"].items():
            if key in allowed:
                continue
            if SECRET in json.dumps(value, default=str) or is_genai_content(key):
                found.append((event["event"], key))
    return found


@pytest.fixture(params=["processor", "exporter"])
def through(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _events(through: str, **options: Any) -> CapturedEvents:
    client, events = memory_client(**options)
    provider = TracerProvider()
    if through == "processor":
        provider.add_span_processor(PosthogSpanProcessor(client, capture_spans="all"))
    else:
        exporter = PosthogSpanExporter(client, capture_spans="all")
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        _run(provider)
    finally:
        provider.shutdown()
        client.shutdown(0)
    return events


def test_ai_off_plain_span_events_carry_no_content_but_keep_metadata(through: str) -> None:
    events = _events(through, capture_ai_spans=False)
    names = sorted(e["event"] for e in events)
    assert names == ["chat", "tool", "workflow"]  # plain span events: the mode says "all"
    assert _leaks(events) == []
    chat = events.named("chat")[0]["properties"]
    assert chat["gen_ai.request.model"] == "gpt-4o-mini"
    assert chat["gen_ai.usage.input_tokens"] == 7 and chat["gen_ai.operation.name"] == "chat"
    assert events.named("tool")[0]["properties"]["gen_ai.tool.name"] == "lookup"


def test_privacy_mode_with_all_spans_sends_no_content_anywhere(through: str) -> None:
    events = _events(through, ai_privacy_mode=True)
    names = sorted(e["event"] for e in events)
    assert names == ["$ai_generation", "$ai_span", "workflow"]
    # tool definitions are the app's own schemas: kept, as posthog-python's privacy_mode does
    assert _leaks(events, allowed=("$ai_tools",)) == []
    generation = events.named("$ai_generation")[0]["properties"]
    assert generation["$ai_model"] == "gpt-4o-mini" and generation["$ai_input_tokens"] == 7


def test_without_privacy_mode_content_is_in_ai_properties_only(through: str) -> None:
    events = _events(through)
    leaks = _leaks(events)
    assert leaks and all(key.startswith("$ai_") for _, key in leaks), leaks
    assert SECRET not in json.dumps(events.named("workflow")[0]["properties"])


def _spans() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _run(provider)
    provider.shutdown()
    return list(memory.get_finished_spans())


@pytest.mark.parametrize(
    "env", [{"POSTHOG_OTEL_CAPTURE_AI": "false"}, {"POSTHOG_OTEL_AI_PRIVACY_MODE": "true"}]
)
def test_bridge_spans_carry_no_content(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    body = encode_spans(_spans()).SerializeToString()
    client, events = memory_client()
    settings = BridgeSettings.build(api_key="phc_test", capture_spans="all")
    assert Pipeline(settings).process("traces", body, PROTOBUF, client).status == 200
    assert len(events) == 3
    assert _leaks(events, allowed=("$ai_tools",)) == []


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {
            "kvlistValue": {"values": [{"key": k, "value": _value(v)} for k, v in value.items()]}
        }
    return {"stringValue": str(value)}


def _record(event_name: str, body: Any, severity: int, **attributes: Any) -> dict[str, Any]:
    return {
        "severityNumber": severity,
        "eventName": event_name,
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "body": _value(body),
        "attributes": [{"key": k, "value": _value(v)} for k, v in attributes.items()],
    }


@pytest.fixture
def log_body() -> Iterator[bytes]:
    records = [
        _record(  # an app marking a GenAI record as an event of its own
            "gen_ai.user.message",
            {"content": SECRET},
            9,
            **{"posthog.event": "prompted", "posthog.distinct_id": "u-1", **CONTENT},
        ),
        _record(  # an error record about a failed generation, with the prompt attached
            "",
            "generation failed",
            17,
            **{"exception.type": "APIError", "exception.message": "boom", **CONTENT},
        ),
    ]
    yield json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}).encode()


def test_bridge_log_records_carry_no_content(log_body: bytes) -> None:
    client, events = memory_client()
    settings = BridgeSettings.build(api_key="phc_test")
    assert Pipeline(settings).process("logs", log_body, JSON, client).status == 200
    assert sorted(e["event"] for e in events) == ["$exception", "prompted"]
    assert _leaks(events) == []
    assert events.named("$exception")[0]["properties"]["message"] == "generation failed"


def test_privacy_mode_cuts_the_error_to_its_class_and_status() -> None:
    client, events = memory_client(ai_privacy_mode=True)
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(client))
    attributes = {**METADATA, "error.type": "<class 'openai.RateLimitError'>"}
    try:
        with provider.get_tracer("t").start_as_current_span("chat", attributes=attributes) as s:
            s.set_status(Status(StatusCode.ERROR, f"Error code: 429 - quota for {SECRET}"))
        assert provider.force_flush(5_000)
    finally:
        provider.shutdown()
        client.shutdown(0)
    props = events.named("$ai_generation")[0]["properties"]
    assert props["$ai_error"] == "RateLimitError: 429" and props["$ai_http_status"] == 429
    assert props["$ai_is_error"] is True and _leaks(events) == []


def test_privacy_mode_applies_only_known_metadata_overrides() -> None:
    client, events = memory_client(ai_privacy_mode=True)
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(client))
    attributes = {
        **METADATA,
        "posthog.ai.model": "override-model",  # known metadata: applied
        "posthog.ai.input": json.dumps([{"role": "user", "content": SECRET}]),
        "posthog.ai.prompt_text": SECRET,  # a name nobody listed: may be content, left out
    }
    try:
        with provider.get_tracer("t").start_as_current_span("chat", attributes=attributes):
            pass
        assert provider.force_flush(5_000)
    finally:
        provider.shutdown()
        client.shutdown(0)
    props = events.named("$ai_generation")[0]["properties"]
    assert props["$ai_model"] == "override-model"
    assert "$ai_input" not in props and "$ai_prompt_text" not in props
    assert _leaks(events) == []
