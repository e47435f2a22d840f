"""What exported spans may carry: privacy mode and ``exclude_properties`` on ``/i/v1/traces``.

Real SDK ``TracerProvider`` under ``PosthogInstrumentor(traces=...)`` (so the span processor
stamps identity and tags too), a real loopback OTLP receiver decoding the protobuf bodies."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as posthog
from posthog_otel import PosthogInstrumentor
from posthog_otel.genai_rules import is_genai_content
from tests.support.otlp_receiver import OtlpReceiver

SECRET = "the-secret-prompt-text"


def _attributes(message: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in message.attributes:
        kind = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, kind) if kind else None
    return out


def _export(
    instrumentor: PosthogInstrumentor, server: OtlpReceiver, **settings: Any
) -> dict[str, Any]:
    provider = TracerProvider()
    instrumentor.instrument(
        api_key="phc_private_traces",
        host=server.url,
        tracer_provider=provider,
        instrument_libraries=False,
        traces={"flush_interval": 0.05},
        **settings,
    )
    tracer = provider.get_tracer("llm-app")
    with posthog.new_context():
        posthog.identify_context("user-p")
        posthog.set_context_session("session-p")
        posthog.tag("email", "p@example.com")
        posthog.tag("plan", "pro")
        with tracer.start_as_current_span("chat gpt-4o") as span:
            span.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 12,
                    "gen_ai.input.messages": json.dumps([{"role": "user", "content": SECRET}]),
                    "gen_ai.prompt.0.content": SECRET,
                    "gen_ai.future.content_attribute": SECRET,  # unknown names are content
                    "llm.request.functions.0.arguments": SECRET,
                    "card_number": "4242",
                    "http.route": "/chat",
                }
            )
            span.add_event("gen_ai.user.message", {"content": SECRET, "gen_ai.system": "openai"})
            span.add_event("gen_ai.choice", {"message": SECRET, "index": 0})
            span.add_event("checkpoint", {"gen_ai.completion.0.content": SECRET, "step": 2})
    assert posthog.flush(10)
    (exported,) = server.wait_for_spans(1)
    return {
        "attributes": _attributes(exported),
        "events": {event.name: _attributes(event) for event in exported.events},
        "raw": exported.SerializeToString(),
    }


def test_privacy_mode_sends_no_genai_content(
    instrumentor: PosthogInstrumentor,
) -> None:
    with OtlpReceiver() as server:
        span = _export(instrumentor, server, privacy_mode=True)
    assert SECRET.encode() not in span["raw"]
    attributes = span["attributes"]
    assert not [key for key in attributes if is_genai_content(key)]
    # metadata stays: the span still says which model, how many tokens, which route
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["http.route"] == "/chat"
    assert attributes["posthogDistinctId"] == "user-p"
    events = span["events"]
    assert events["gen_ai.user.message"] == {"gen_ai.system": "openai"}
    assert events["gen_ai.choice"] == {}
    assert events["checkpoint"] == {"step": 2}


def test_without_privacy_mode_content_is_exported_as_recorded(
    instrumentor: PosthogInstrumentor,
) -> None:
    with OtlpReceiver() as server:
        span = _export(instrumentor, server)
    assert span["attributes"]["gen_ai.prompt.0.content"] == SECRET
    assert span["events"]["gen_ai.user.message"]["content"] == SECRET
    assert span["events"]["checkpoint"]["gen_ai.completion.0.content"] == SECRET


def test_exclude_properties_keeps_identity_tags_and_attributes_off_spans(
    instrumentor: PosthogInstrumentor,
) -> None:
    with OtlpReceiver() as server:
        span = _export(instrumentor, server, exclude_properties=["$session_id", "email", "card_*"])
    attributes = span["attributes"]
    for absent in ("sessionId", "posthog.session_id", "posthog.tag.email", "card_number"):
        assert absent not in attributes
    assert b"session-p" not in span["raw"] and b"p@example.com" not in span["raw"]
    assert attributes["posthogDistinctId"] == "user-p"
    assert attributes["posthog.distinct_id"] == "user-p"
    assert attributes["posthog.tag.plan"] == "pro"
    assert attributes["http.route"] == "/chat"
