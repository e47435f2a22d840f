"""GenAI content sent as log records, joined to the generation's span: contrib's ``openai-v2``
in its event mode (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=event_only``: no content
on the span, one ``gen_ai.client.inference.operation.details`` record per call), the real
``openai`` client against the loopback fake model server; in process through
:class:`PosthogGenAiLogProcessor`, and through the bridge with the same records and spans sent
as OTLP. Also the per-message records (``gen_ai.user.message``, ``gen_ai.choice``) that the
instrumentation's own record builders make."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.instrumentation.openai_v2.utils import choice_to_event, message_to_event
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import posthog_otel as posthog
from posthog_otel import PosthogGenAiLogProcessor, PosthogSpanProcessor
from posthog_otel.bridge.pipeline import Pipeline
from posthog_otel.bridge.settings import BridgeSettings
from posthog_otel.otlp.responses import PROTOBUF
from posthog_otel.spans import genai_logs
from posthog_otel.testing import CapturedEvents, memory_client
from posthog_otel.testing.fake_model import TOOL_ARGUMENTS, FakeModelServer
from tests.support.llm_oracle import OPENAI_TOOLS as TOOLS

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hello there"},
]


class Setup:
    def __init__(self, model: FakeModelServer) -> None:
        self.client, self.events = memory_client()
        self.spans = InMemorySpanExporter()
        self.records = InMemoryLogRecordExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.tracer_provider.add_span_processor(PosthogSpanProcessor(self.client))
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(PosthogGenAiLogProcessor(self.client))
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.records))
        self.openai = openai.OpenAI(base_url=model.base_url, api_key="sk-test", max_retries=0)

    def flush(self) -> None:
        assert self.tracer_provider.force_flush(5_000)


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    saved = os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
    os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "event_only"
    with FakeModelServer() as model:
        state = Setup(model)
        instrumentor = OpenAIInstrumentor()
        instrumentor.instrument(
            tracer_provider=state.tracer_provider, logger_provider=state.logger_provider
        )
        try:
            yield state
        finally:
            instrumentor.uninstrument()
            state.tracer_provider.shutdown()
            state.logger_provider.shutdown()
            state.client.shutdown(0)
            if saved is None:
                os.environ.pop("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", None)
            else:
                os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = saved


def _ask(setup: Setup, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    """One chat call inside an identified context: its event and its span."""
    setup.spans.clear()
    setup.records.clear()
    before = len(setup.events)
    with posthog.new_context():
        posthog.identify_context("user-5")
        setup.openai.chat.completions.create(model="gpt-4o-mini", **kwargs)
    setup.flush()
    (event,) = [e for e in setup.events.all[before:] if e["event"] == "$ai_generation"]
    (span,) = setup.spans.get_finished_spans()
    return event, span


def test_event_mode_content_comes_from_the_details_record(setup: Setup) -> None:
    event, span = _ask(setup, messages=MESSAGES)
    assert "gen_ai.input.messages" not in (span.attributes or {})  # not on the span
    names = [r.log_record.event_name for r in setup.records.get_finished_logs()]
    assert names == ["gen_ai.client.inference.operation.details"]
    props = event["properties"]
    assert event["distinct_id"] == "user-5"
    assert props["$ai_input"] == MESSAGES
    assert props["$ai_output_choices"] == [
        {"role": "assistant", "content": [{"type": "text", "text": "You said: hello there"}]}
    ]
    context = span.context
    assert genai_logs.CONTENT.claim(context.trace_id, context.span_id) == []  # taken, not kept


def test_event_mode_tool_calls(setup: Setup) -> None:
    event, _ = _ask(setup, messages=[{"role": "user", "content": "weather?"}], tools=TOOLS)
    props = event["properties"]
    (call,) = props["$ai_output_choices"][0]["content"]
    assert call["function"] == {"name": "get_weather", "arguments": TOOL_ARGUMENTS}


def test_privacy_mode_keeps_no_records() -> None:
    client, _ = memory_client(ai_privacy_mode=True)
    store = genai_logs.ContentStore()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(PosthogGenAiLogProcessor(client, store))
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("chat"):
        logger_provider.get_logger("t").emit(
            message_to_event({"role": "user", "content": "secret"}, True)
        )
    assert len(store) == 0
    client.shutdown(0)


def _bridge(bodies: list[tuple[str, bytes]], **options: Any) -> CapturedEvents:
    client, events = memory_client()
    pipeline = Pipeline(BridgeSettings.build(api_key="phc_test", **options))
    for signal, body in bodies:
        assert pipeline.process(signal, body, PROTOBUF, client).status == 200
    return events


def test_bridge_joins_records_sent_before_their_span(setup: Setup) -> None:
    in_process, span = _ask(setup, messages=MESSAGES)
    records = setup.records.get_finished_logs()
    logs_body = encode_logs(records).SerializeToString()
    traces_body = encode_spans([span]).SerializeToString()
    events = _bridge([("logs", logs_body), ("traces", traces_body)])
    (bridged,) = events.named("$ai_generation")
    assert bridged["distinct_id"] == "user-5"
    for key in ("$ai_input", "$ai_output_choices", "$ai_model", "$ai_input_tokens"):
        assert bridged["properties"][key] == in_process["properties"][key], key
    # a span that arrives before its records waits for them (--genai-log-wait)
    events = _bridge([("traces", traces_body), ("logs", logs_body)])
    (late,) = events.named("$ai_generation")
    assert late["distinct_id"] == "user-5"
    for key in ("$ai_input", "$ai_output_choices", "$ai_model", "$ai_input_tokens"):
        assert late["properties"][key] == in_process["properties"][key], key
    # without the wait, it is sent at once without them
    events = _bridge([("traces", traces_body), ("logs", logs_body)], genai_log_wait=0)
    (early,) = events.named("$ai_generation")
    assert "$ai_input" not in early["properties"]
    assert early["properties"]["$ai_model"] == "gpt-4o-mini"
    genai_logs.CONTENT.claim(span.context.trace_id, span.context.span_id)  # leave none behind


def test_per_message_records_as_the_instrumentation_builds_them(setup: Setup) -> None:
    """The ``gen_ai.<role>.message``/``gen_ai.choice`` records of the v1.30 conventions, made by
    openai-v2's own builders and emitted inside a chat span through the real SDK logger."""

    class Choice:
        index = 0
        finish_reason = "stop"

        class message:
            role = "assistant"
            content = "Hi!"
            tool_calls = None

    before = len(setup.events)
    tracer = setup.tracer_provider.get_tracer("t")
    logger = setup.logger_provider.get_logger("t")
    attributes = {"gen_ai.system": "openai", "gen_ai.operation.name": "chat"}
    with posthog.new_context():
        posthog.identify_context("user-6")
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attributes):
            for message in MESSAGES:
                logger.emit(message_to_event(message, True))
            logger.emit(choice_to_event(Choice, True))
    setup.flush()
    (event,) = [e for e in setup.events.all[before:] if e["event"] == "$ai_generation"]
    assert event["properties"]["$ai_input"] == MESSAGES
    assert event["properties"]["$ai_output_choices"] == [
        {"role": "assistant", "content": [{"type": "text", "text": "Hi!"}]}
    ]
