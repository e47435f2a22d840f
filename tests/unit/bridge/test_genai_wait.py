"""The bridge's hold for generations whose content records come after their span
(:mod:`posthog_otel.bridge.genai_wait`), through the real pipeline and in-memory clients."""

from __future__ import annotations

import time
from typing import Any

import pytest

from posthog_otel.bridge.genai_wait import GenAiWait
from posthog_otel.bridge.pipeline import Pipeline
from posthog_otel.bridge.settings import BridgeSettings
from posthog_otel.otlp.responses import PROTOBUF
from posthog_otel.spans import genai_logs
from posthog_otel.testing import CapturedEvents, memory_client
from tests.support.genai_otlp import GenAiCall
from tests.support.waiting import wait_for_events


def _pipeline(**options: Any) -> Pipeline:
    return Pipeline(BridgeSettings.build(api_key="phc_test", **options))


def _send(pipeline: Pipeline, client: Any, *bodies: tuple[str, bytes]) -> None:
    for signal, body in bodies:
        assert pipeline.process(signal, body, PROTOBUF, client).status == 200


def _generations(events: CapturedEvents) -> list[dict[str, Any]]:
    return events.named("$ai_generation")


@pytest.mark.parametrize("records", ["logs", "details_logs"])
def test_late_records_make_the_event_records_first_would_have_made(records: str) -> None:
    """One rule for each property: the held event joined to its records equals the event made
    when the same records came first, property for property, person included."""
    call = GenAiCall("user-1")
    traces, logs = call.traces(), getattr(call, records)()
    first_client, first_events = memory_client()
    _send(_pipeline(), first_client, ("logs", logs), ("traces", traces))
    late_client, late_events = memory_client()
    pipeline = _pipeline()
    _send(pipeline, late_client, ("traces", traces))
    assert _generations(late_events) == []  # held
    _send(pipeline, late_client, ("logs", logs))
    (first,) = _generations(first_events)
    (late,) = _generations(late_events)
    assert "$ai_input" in late["properties"] and "$ai_output_choices" in late["properties"]
    assert late["distinct_id"] == first["distinct_id"] == "user-1"
    assert late["properties"] == first["properties"]
    assert late["timestamp"] == first["timestamp"]
    assert pipeline.genai_wait.stats()["ai_held_joined"] == 1
    assert len(genai_logs.CONTENT) == 0  # claimed, nothing left behind
    pipeline.close()
    assert len(_generations(late_events)) == 1  # not sent again on close


def test_the_wait_ends_and_the_event_goes_without_content() -> None:
    call = GenAiCall("user-2")
    client, events = memory_client()
    pipeline = _pipeline(genai_log_wait=0.3)
    started = time.monotonic()
    _send(pipeline, client, ("traces", call.traces()))
    assert _generations(events) == []
    (event,) = wait_for_events(events, lambda e: e["event"] == "$ai_generation", timeout=5)
    assert time.monotonic() - started >= 0.3
    assert event["distinct_id"] == "user-2"
    assert event["properties"]["$session_id"] == "session-user-2"
    assert event["properties"]["plan"] == "pro"
    assert "$ai_input" not in event["properties"]
    stats = pipeline.genai_wait.stats()
    assert (stats["ai_held_expired"], stats["ai_held_now"]) == (1, 0)
    pipeline.close()


def test_only_generations_that_may_still_get_messages_are_held() -> None:
    client, events = memory_client()
    pipeline = _pipeline()
    embedding = GenAiCall("user-e", **{"gen_ai.operation.name": "embeddings"})
    tool = GenAiCall("user-t", **{"gen_ai.operation.name": "execute_tool"})
    _send(pipeline, client, ("traces", embedding.traces()), ("traces", tool.traces()))
    assert {e["event"] for e in events} == {"$ai_embedding", "$ai_span"}
    # a failed call with its prompt but no answer: no answer will come
    failed = GenAiCall("user-f")
    prompt_only = GenAiCall("user-p")
    for call in (failed, prompt_only):
        genai_logs.CONTENT.add(
            int.from_bytes(call.trace_id, "big"),
            int.from_bytes(call.span_id, "big"),
            genai_logs.record_event("gen_ai.user.message", {"content": "Hi"}, {}),
        )
    _send(pipeline, client, ("traces", failed.traces(status_code=2)))
    _send(pipeline, client, ("traces", prompt_only.traces()))
    sent = {e["distinct_id"] for e in _generations(events)}
    assert sent == {"user-f"}  # the one without an answer yet (user-p) waits for it
    assert pipeline.genai_wait.stats()["ai_events_held"] == 1
    pipeline.close()
    (waited,) = [e for e in _generations(events) if e["distinct_id"] == "user-p"]
    assert waited["properties"]["$ai_input"] == [{"role": "user", "content": "Hi"}]


def test_privacy_mode_and_wait_zero_hold_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTHOG_OTEL_AI_PRIVACY_MODE", "true")
    call = GenAiCall("user-3")
    client, events = memory_client()
    pipeline = _pipeline()
    assert not pipeline.genai_wait.enabled
    _send(pipeline, client, ("traces", call.traces()), ("logs", call.logs()))
    (event,) = _generations(events)
    assert "$ai_input" not in event["properties"]
    assert len(genai_logs.CONTENT) == 0  # content records are not even kept
    monkeypatch.delenv("POSTHOG_OTEL_AI_PRIVACY_MODE")
    assert not _pipeline(genai_log_wait=0).genai_wait.enabled
    assert _pipeline().genai_wait.enabled


def test_a_hold_full_by_bytes_sends_the_oldest_at_once() -> None:
    client, events = memory_client()
    pipeline = _pipeline()
    wait = GenAiWait(pipeline.spans, wait=60, max_events=100, max_bytes=1)
    calls = [GenAiCall(f"user-b{n}") for n in range(3)]
    # the events as the mapper makes them, held directly: each is over the byte bound alone
    mapped = _mapped_events(pipeline, calls)
    for event in mapped:
        assert wait.hold(event, client)
    assert [e["distinct_id"] for e in _generations(events)] == ["user-b0", "user-b1"]
    assert wait.stats()["ai_held_overflow"] == 2 and wait.stats()["ai_held_now"] == 1
    assert wait.close() == 1
    assert [e["distinct_id"] for e in _generations(events)] == ["user-b0", "user-b1", "user-b2"]
    assert not wait.hold(mapped[0], client)  # closed: the caller sends it


def _mapped_events(pipeline: Pipeline, calls: list[GenAiCall]) -> list[Any]:
    from posthog_otel.otlp.decode import decode_traces
    from posthog_otel.spans.mapping import ExportFamily

    found = []
    for call in calls:
        spans = decode_traces(call.traces(), PROTOBUF, pipeline.spans.may_yield, 128)
        (span,) = spans.items
        (event,) = pipeline.spans.events_for(span, family=ExportFamily(spans.items))
        found.append(event)
    return found


def test_held_events_count_as_queued_for_admission() -> None:
    client, _ = memory_client(max_queue_size=8)  # the bridge's --max-queue-size 8: 2 held
    pipeline = _pipeline(max_queue_size=8)
    for n in range(2):
        _send(pipeline, client, ("traces", GenAiCall(f"user-q{n}").traces()))
    assert pipeline.genai_wait.held()[0] == 2
    many = b"".join(GenAiCall(f"user-r{n}").traces() for n in range(7))  # 7 more events
    assert pipeline.process("traces", many, PROTOBUF, client).status == 429
    pipeline.close()
    assert pipeline.genai_wait.held() == (0, 0)
    assert pipeline.process("traces", many, PROTOBUF, client).status == 200
    pipeline.close()


def test_the_wait_option() -> None:
    assert BridgeSettings.build().genai_log_wait == 5.0
    assert (
        BridgeSettings.build(environ={"POSTHOG_OTEL_GENAI_LOG_WAIT": "1.5"}).genai_log_wait == 1.5
    )
    given = BridgeSettings.build(genai_log_wait=0, environ={"POSTHOG_OTEL_GENAI_LOG_WAIT": "9"})
    assert given.genai_log_wait == 0.0
    with pytest.raises(ValueError, match="POSTHOG_OTEL_GENAI_LOG_WAIT"):
        BridgeSettings.build(environ={"POSTHOG_OTEL_GENAI_LOG_WAIT": "soon"})
    with pytest.raises(ValueError, match="genai_log_wait must be from 0 to 60"):
        BridgeSettings.build(genai_log_wait=-1)
    settings = BridgeSettings.build(genai_log_wait=2)
    assert BridgeSettings.from_json(settings.to_json()).genai_log_wait == 2.0  # to workers


def test_the_hold_counts_the_span_data_a_held_event_keeps_for_its_records() -> None:
    """A held generation keeps its span's attributes and events (to be made again with late
    records); their bytes count against the hold's bound, not only the event's properties."""
    client, events = memory_client()
    pipeline = _pipeline(max_queue_bytes=1024 * 1024)  # the hold: a quarter, 256 KiB
    blob = "x" * 100_000  # not a property of the AI event, but kept with it
    for n in range(6):
        _send(pipeline, client, ("traces", GenAiCall(f"user-m{n}", note=blob).traces()))
        held, held_bytes = pipeline.genai_wait.held()
        assert held_bytes >= held * len(blob)
        assert held_bytes <= 256 * 1024 + 2 * len(blob)
    stats = pipeline.genai_wait.stats()
    assert stats["ai_held_overflow"] >= 3 and stats["ai_held_now"] <= 2
    assert len(_generations(events)) == stats["ai_held_overflow"]
    pipeline.close()
    assert len(_generations(events)) == 6


def _user_messages(call: GenAiCall, count: int) -> bytes:
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

    from tests.support.genai_otlp import _attributes, _logs_request, _value

    return _logs_request(
        [
            LogRecord(
                time_unix_nano=time.time_ns(),
                trace_id=call.trace_id,
                span_id=call.span_id,
                event_name="gen_ai.user.message",
                body=_value({"content": f"message {n}"}),
                attributes=_attributes({"gen_ai.system": "openai"}),
            )
            for n in range(count)
        ]
    )


def test_a_request_sends_only_the_generations_its_own_records_joined() -> None:
    """Logs requests are mapped on more than one thread (big bodies off the event loop): one
    that ends must not send a generation whose records another is still mapping, with only
    part of them."""
    import sys
    import threading

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave every few bytecodes
    try:
        client, events = memory_client()
        pipeline = _pipeline()
        other = GenAiCall("user-other").logs()  # records of a span with no held event
        messages = 250
        for n in range(10):
            call = GenAiCall(f"user-j{n}")
            _send(pipeline, client, ("traces", call.traces()))
            body = _user_messages(call, messages)
            stop = threading.Event()

            def other_requests(stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    pipeline.process("logs", other, PROTOBUF, client)

            thread = threading.Thread(target=other_requests)
            thread.start()
            try:
                _send(pipeline, client, ("logs", body))
            finally:
                stop.set()
                thread.join()
            (event,) = [e for e in _generations(events) if e["distinct_id"] == f"user-j{n}"]
            assert len(event["properties"]["$ai_input"]) == messages
        pipeline.close()
    finally:
        sys.setswitchinterval(previous)
