"""``$ai_parent_id`` names the nearest AI ancestor through plain spans in between (an agent
whose model call goes through an HTTP client span), and only the top AI span of a trace is its
``$ai_trace``: through the span processor and the exporter alike."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

import posthog_otel as posthog
from posthog_otel import PosthogSpanExporter, PosthogSpanProcessor
from posthog_otel.spans.genai_nesting import AiAncestry
from posthog_otel.testing import memory_client

AGENT = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}
CHAT = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}
TOOL = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}


def _hex(span: Any) -> str:
    return format(span.get_span_context().span_id, "016x")


@pytest.mark.parametrize("through", ["processor", "exporter"])
def test_nearest_ai_ancestor_through_plain_spans(through: str) -> None:
    client, events = memory_client()
    provider = TracerProvider()
    if through == "processor":
        provider.add_span_processor(PosthogSpanProcessor(client))
    else:
        provider.add_span_processor(BatchSpanProcessor(PosthogSpanExporter(client)))
    tracer = provider.get_tracer("t")
    ids = {}
    span = tracer.start_as_current_span
    with posthog.new_context():
        posthog.identify_context("u-1")
        with (
            span("GET /ask", kind=SpanKind.SERVER),
            span("invoke_agent planner", attributes=AGENT) as agent,
        ):
            ids["agent"] = _hex(agent)
            with span("POST", kind=SpanKind.CLIENT), span("chat m", attributes=CHAT) as chat:
                ids["chat"] = _hex(chat)
            with span("step"), span("invoke_agent helper", attributes=AGENT) as helper:
                ids["helper"] = _hex(helper)
                with (
                    span("step"),
                    span("POST", kind=SpanKind.CLIENT),
                    span("tool", attributes=TOOL) as tool,
                ):
                    ids["tool"] = _hex(tool)
    assert provider.force_flush(5_000)
    provider.shutdown()
    by_span = {e["properties"]["$ai_span_id"]: e for e in events if e["event"].startswith("$ai_")}
    assert by_span[ids["agent"]]["event"] == "$ai_trace"  # the top AI span of the trace
    assert "$ai_parent_id" not in by_span[ids["agent"]]["properties"]
    expected = {
        "chat": ("$ai_generation", "agent"),
        "helper": ("$ai_span", "agent"),  # an agent under an agent is a step, not a trace
        "tool": ("$ai_span", "helper"),
    }
    for name, (event, parent) in expected.items():
        props = by_span[ids[name]]["properties"]
        assert (by_span[ids[name]]["event"], props["$ai_parent_id"]) == (event, ids[parent]), name
    assert len(by_span) == 4


def test_ancestry_is_forgotten_when_spans_end_and_bounded() -> None:
    ancestry = AiAncestry(capacity=3)
    assert ancestry.enter(1, 0, False) is None and len(ancestry) == 0  # no AI above: no entry
    assert ancestry.enter(2, 0, True) is None
    assert ancestry.enter(3, 2, False) == 2
    assert ancestry.enter(4, 3, False) == 2
    assert ancestry.enter(5, 4, True) == 2 and len(ancestry) == 3  # full: 5 not recorded
    assert ancestry.enter(6, 5, False) is None
    for span in (6, 5, 4, 3, 2, 1):
        ancestry.leave(span)
    assert len(ancestry) == 0
