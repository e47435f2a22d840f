"""The store of GenAI content records waiting for their span: bounds, age, claiming once, and
the log record processor's choice of records."""

from __future__ import annotations

import time

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

from posthog_otel import PosthogGenAiLogProcessor
from posthog_otel.spans.genai_logs import ContentStore, GenAiRecord, record_event
from posthog_otel.testing import memory_client

RECORD = GenAiRecord("gen_ai.user.message", {"content": "hi"})


def test_claimed_once_and_only_for_its_span() -> None:
    store = ContentStore()
    assert store.add(1, 2, RECORD) and store.add(1, 2, RECORD)
    assert store.claim(1, 3) == [] and store.claim(9, 2) == []
    assert store.claim(1, 2) == [RECORD, RECORD]
    assert store.claim(1, 2) == []
    assert not store.add(0, 2, RECORD) and not store.add(1, 0, RECORD)  # no span: not kept


def test_bounded_by_spans_records_and_age() -> None:
    store = ContentStore(max_spans=3, max_records=2, max_age=0.05)
    for span in range(1, 6):
        store.add(1, span, RECORD)
    assert len(store) == 3 and store.claim(1, 1) == [] and store.claim(1, 5) == [RECORD]
    store.add(1, 7, RECORD)
    store.add(1, 7, RECORD)
    assert not store.add(1, 7, RECORD) and store.dropped >= 3
    time.sleep(0.06)
    assert store.claim(1, 7) == []  # too old


def test_record_body_fields_over_attributes() -> None:
    event = record_event("gen_ai.choice", {"message": {"content": "x"}}, {"gen_ai.system": "o"})
    assert event.attributes == {"gen_ai.system": "o", "message": {"content": "x"}}
    assert record_event("gen_ai.user.message", "plain", None).attributes == {"content": "plain"}


def test_processor_keeps_genai_records_of_a_span_only() -> None:
    client, _ = memory_client()
    store = ContentStore()
    logs = LoggerProvider()
    logs.add_log_record_processor(PosthogGenAiLogProcessor(client, store))
    logger = logs.get_logger("t")
    logger.emit(LogRecord(event_name="gen_ai.user.message", body={"content": "no span"}))
    with TracerProvider().get_tracer("t").start_as_current_span("chat") as span:
        logger.emit(LogRecord(event_name="gen_ai.user.message", body={"content": "hi"}))
        logger.emit(LogRecord(body="an ordinary log line"))
    context = span.get_span_context()
    assert len(store) == 1
    (kept,) = store.claim(context.trace_id, context.span_id)
    assert kept.name == "gen_ai.user.message" and kept.attributes["content"] == "hi"
    client.shutdown(0)
