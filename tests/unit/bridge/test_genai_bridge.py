"""A GenAI span from another process, exported as OTLP the way any language's SDK does (identity
copied from baggage onto the span by a baggage span processor), becomes the same
``$ai_generation`` at the bridge as the in-process exporter makes of it."""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry import baggage, context
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.openai_v2.utils import message_to_event
from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from posthog_otel import PosthogSpanExporter
from posthog_otel.bridge.pipeline import Pipeline
from posthog_otel.bridge.settings import BridgeSettings
from posthog_otel.otlp.responses import JSON, PROTOBUF
from posthog_otel.testing import memory_client

INPUT = [{"role": "user", "parts": [{"type": "text", "content": "Summarise my cart"}]}]
OUTPUT = [{"role": "assistant", "parts": [{"type": "text", "content": "3 items, 42 EUR"}]}]


def _export_generation() -> tuple[Any, list[dict[str, Any]]]:
    """One chat span inside a context whose baggage names the user; returns the finished span
    and the events the in-process exporter made of it."""
    client, events = memory_client()
    provider = TracerProvider(resource=Resource.create({"service.name": "cart-node"}))
    provider.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    provider.add_span_processor(SimpleSpanProcessor(PosthogSpanExporter(client)))
    ctx = baggage.set_baggage("posthog.distinct_id", "user-77")
    ctx = baggage.set_baggage("posthog.session_id", "sess-77", ctx)
    token = context.attach(ctx)
    try:
        tracer = provider.get_tracer("node-genai")
        with tracer.start_as_current_span("GET /cart/summary", kind=SpanKind.SERVER):
            attributes = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
            }
            with tracer.start_as_current_span(
                "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attributes
            ) as span:
                span.set_attributes(
                    {
                        "gen_ai.input.messages": json.dumps(INPUT),
                        "gen_ai.output.messages": json.dumps(OUTPUT),
                        "gen_ai.usage.input_tokens": 9,
                        "gen_ai.usage.output_tokens": 6,
                    }
                )
    finally:
        context.detach(token)
    provider.shutdown()
    generation = next(s for s in spans.get_finished_spans() if s.name.startswith("chat"))
    return generation, events.named("$ai_generation")


def test_bridge_makes_the_same_generation_as_the_in_process_exporter() -> None:
    span, in_process = _export_generation()
    body = encode_spans([span]).SerializeToString()  # the span alone, as a later export
    client, events = memory_client()
    outcome = Pipeline(BridgeSettings.build(api_key="phc_test")).process(
        "traces", body, PROTOBUF, client
    )
    assert outcome.status == 200 and outcome.rejected == 0
    (bridged,) = events.named("$ai_generation")
    (expected,) = in_process
    assert bridged["distinct_id"] == expected["distinct_id"] == "user-77"
    props = bridged["properties"]
    assert props["$session_id"] == "sess-77"
    assert props["$ai_input"] == [{"role": "user", "content": "Summarise my cart"}]
    assert props["$ai_output_choices"][0]["content"] == [
        {"type": "text", "text": "3 items, 42 EUR"}
    ]
    assert props["$ai_trace_id"] == format(span.context.trace_id, "032x")

    def ai(properties: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in properties.items() if k.startswith("$ai_")}

    assert ai(props) == ai(expected["properties"])
    assert props["service.name"] == expected["properties"]["service.name"] == "cart-node"


def test_bridge_sends_a_generation_whatever_capture_spans_says() -> None:
    """A CLIENT span with a local parent: decoded and sent even in "roots" and "none"."""
    span, _ = _export_generation()
    body = encode_spans([span]).SerializeToString()
    for capture_spans in ("roots", "none"):
        client, events = memory_client()
        settings = BridgeSettings.build(api_key="phc_test", capture_spans=capture_spans)
        assert Pipeline(settings).process("traces", body, PROTOBUF, client).status == 200
        assert [e["event"] for e in events] == ["$ai_generation"], capture_spans


_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _otlp_json(message: Any) -> bytes:
    """OTLP JSON as the specification defines it: proto3 JSON, integer enums, hex ids."""
    document = MessageToDict(message, use_integers_for_enums=True)

    def hex_ids(value: Any) -> None:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if key in _ID_FIELDS and isinstance(item, str):
                value[key] = base64.b64decode(item).hex()
            elif isinstance(item, dict | list):
                hex_ids(item)

    hex_ids(document)
    return json.dumps(document).encode()


def _ai(properties: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if k.startswith("$ai_")}


def test_bridge_reads_a_generation_sent_as_otlp_json() -> None:
    span, in_process = _export_generation()
    body = _otlp_json(encode_spans([span]))
    assert b'"gen_ai.input.messages"' in body and b"stringValue" in body
    client, events = memory_client()
    outcome = Pipeline(BridgeSettings.build(api_key="phc_test")).process(
        "traces", body, JSON, client
    )
    assert outcome.status == 200 and outcome.rejected == 0
    (bridged,) = events.named("$ai_generation")
    (expected,) = in_process
    assert bridged["distinct_id"] == "user-77"
    assert bridged["properties"]["$session_id"] == "sess-77"
    assert _ai(bridged["properties"]) == _ai(expected["properties"])
    assert bridged["properties"]["$ai_input"] == [{"role": "user", "content": "Summarise my cart"}]


def test_bridge_joins_json_log_records_to_a_json_span() -> None:
    """Per-message records (openai-v2's own builder) with structured bodies, as OTLP JSON."""
    records = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(records))
    provider = TracerProvider()
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai"}
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    with provider.get_tracer("t").start_as_current_span("chat", attributes=attributes):
        for message in messages:
            logger_provider.get_logger("t").emit(message_to_event(message, True))
    client, events = memory_client()
    pipeline = Pipeline(BridgeSettings.build(api_key="phc_test"))
    logs_body = _otlp_json(encode_logs(records.get_finished_logs()))
    assert b"kvlistValue" in logs_body  # the bodies are structured values
    assert pipeline.process("logs", logs_body, JSON, client).status == 200
    traces_body = _otlp_json(encode_spans(spans.get_finished_spans()))
    assert pipeline.process("traces", traces_body, JSON, client).status == 200
    # input but no output yet: the generation waits for a late gen_ai.choice record
    assert events.named("$ai_generation") == []
    pipeline.close()
    (generation,) = events.named("$ai_generation")
    assert generation["properties"]["$ai_input"] == messages
    assert [e["event"] for e in events] == ["$ai_generation"]  # the records are not events


def _span_with_content_events() -> Any:
    """A chat span whose content is in span events: per message, and a details event."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    with provider.get_tracer("t").start_as_current_span("chat", attributes=attributes) as span:
        span.add_event("gen_ai.user.message", {"content": "Hi"})
        span.add_event(
            "gen_ai.client.inference.operation.details",
            {
                "gen_ai.output.messages": json.dumps(OUTPUT),
                "gen_ai.tool.definitions": json.dumps([{"type": "function", "name": "f"}]),
            },
        )
    (finished,) = spans.get_finished_spans()
    return finished


def test_content_in_span_events_through_exporter_and_bridge() -> None:
    span = _span_with_content_events()
    client, exported = memory_client()
    PosthogSpanExporter(client).export([span])
    bridged_client, bridged = memory_client()
    for body, kind in (
        (encode_spans([span]).SerializeToString(), PROTOBUF),
        (_otlp_json(encode_spans([span])), JSON),
    ):
        outcome = Pipeline(BridgeSettings.build(api_key="phc_test")).process(
            "traces", body, kind, bridged_client
        )
        assert outcome.status == 200
    results = [*exported.named("$ai_generation"), *bridged.named("$ai_generation")]
    assert len(results) == 3
    for event in results:
        props = event["properties"]
        assert props["$ai_input"] == [{"role": "user", "content": "Hi"}]
        assert props["$ai_output_choices"][0]["content"] == [
            {"type": "text", "text": "3 items, 42 EUR"}
        ]
        assert props["$ai_tools"] == [{"type": "function", "function": {"name": "f"}}]
