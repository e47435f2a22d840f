"""LLM analytics benchmark: the cost of a GenAI span's ``$ai_generation`` event next to a plain
request span's event.

    python -m benchmarks.genai

Per span, the event cost: mapping the finished span to its event (``PosthogSpanExporter.
export_span``, as the span processor's background thread runs it) and the client building and
queueing the event (to a transport that discards it). Contenders: a local root ``SERVER`` span
with HTTP attributes and a person (what ``capture_spans="roots"`` sends for every request) vs a
``chat`` span as contrib's ``openai-v2`` instrumentation records it (model, tokens, finish
reasons, one system + one user input message, one output message as JSON attributes).
Target: the generation's event costs <= 1.5x the plain root span's. (b) the same chat span
without message content (the instrumentation's default, or ``ai_privacy_mode``'s cost).
(c) (a) and (b) again in process CPU time (medians of interleaved rounds): wall time swings with
the machine's load, CPU time much less, so (c) is the figure to compare between versions.
(d) the chat span of (a) that also carries ``gen_ai.system_instructions`` and two function
tools with JSON-schema parameters in ``gen_ai.tool.definitions``, and (e) a chat span whose
reply is a tool call (a ``tool_call`` part), both in CPU time like (c).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import posthog_otel as posthog
from posthog_otel.spans.exporter import PosthogSpanExporter
from posthog_otel.spans.mapping import Identity

from ._timing import compare, ratio_line

TAGS = {"plan": "pro", "region": "eu", "cart_items": 3, "beta": True, "ab_group": "B"}
HTTP = {
    "http.request.method": "POST",
    "url.scheme": "http",
    "server.address": "shop.example",
    "url.path": "/assistant",
    "http.route": "/assistant",
    "client.address": "198.51.100.7",
    "user_agent.original": "Mozilla/5.0",
    "http.response.status_code": 200,
}
INPUT = [
    {"role": "system", "parts": [{"type": "text", "content": "You are a helpful shop assistant."}]},
    {"role": "user", "parts": [{"type": "text", "content": "Which of my orders has shipped?"}]},
]
OUTPUT = [
    {
        "role": "assistant",
        "parts": [{"type": "text", "content": "Order 1042 shipped yesterday; 1043 is packed."}],
        "finish_reason": "stop",
    }
]
INSTRUCTIONS = [{"type": "text", "content": "Answer briefly. Use the tools for order data."}]
TOOLS = [
    {
        "type": "function",
        "name": "get_order_status",
        "description": "The shipping status of one of the customer's orders.",
        "parameters": {
            "type": "object",
            "properties": {
                "order_id": {"type": "string", "description": "The order number, e.g. 1042."}
            },
            "required": ["order_id"],
            "additionalProperties": False,
        },
    },
    {
        "type": "function",
        "name": "list_orders",
        "description": "The customer's recent orders, newest first.",
        "parameters": {
            "type": "object",
            "properties": {
                "limit": {"type": "integer", "description": "How many orders, at most 20."},
                "status": {"type": "string", "enum": ["open", "shipped", "delivered"]},
            },
            "required": [],
        },
    },
]
TOOL_CALL_OUTPUT = [
    {
        "role": "assistant",
        "parts": [
            {
                "type": "tool_call",
                "id": "call_VSPygqKTWdrhaFErNvMV18Yl",
                "name": "get_order_status",
                "arguments": {"order_id": "1042"},
            }
        ],
        "finish_reason": "tool_calls",
    }
]
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.request.temperature": 0.2,
    "gen_ai.response.model": "gpt-4o-mini",
    "gen_ai.response.id": "chatcmpl-123",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 21,
    "gen_ai.usage.output_tokens": 12,
    "gen_ai.input.messages": json.dumps(INPUT),
    "gen_ai.output.messages": json.dumps(OUTPUT),
}
CHAT_WITH_TOOLS = {
    **CHAT,
    "gen_ai.system_instructions": json.dumps(INSTRUCTIONS),
    "gen_ai.tool.definitions": json.dumps(TOOLS),
}
CHAT_TOOL_CALL = {
    **CHAT,
    "gen_ai.response.finish_reasons": ("tool_calls",),
    "gen_ai.output.messages": json.dumps(TOOL_CALL_OUTPUT),
}


class _Discard:
    """A transport that takes every event and keeps none."""

    def enqueue(self, event: dict[str, Any]) -> bool:
        return True

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        return True

    def stats(self) -> dict[str, Any]:
        return {}


def _spans() -> tuple[ReadableSpan, ...]:
    """A request's root span, a chat span inside it, the chat span without content, with
    system instructions and tool definitions, and a chat span whose reply is a tool call."""
    provider = TracerProvider()
    finished = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(finished))
    tracer = provider.get_tracer("bench")
    without = {k: v for k, v in CHAT.items() if not k.endswith(".messages")}
    with tracer.start_as_current_span("POST /assistant", kind=SpanKind.SERVER, attributes=HTTP):
        tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=CHAT).end()
        tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=without).end()
        for attributes in (CHAT_WITH_TOOLS, CHAT_TOOL_CALL):
            tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=attributes).end()
    chat, bare_chat, tools_chat, tool_call_chat, root = finished.get_finished_spans()
    return root, chat, bare_chat, tools_chat, tool_call_chat


def _cpu_compare(contenders: dict[str, Callable[[], object]], calls: int) -> dict[str, float]:
    """Median process CPU ns/call of each contender over interleaved rounds."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        for _ in range(calls // 10):
            fn()
    for _ in range(9):
        for name, fn in contenders.items():
            start = time.process_time_ns()
            for _ in range(calls):
                fn()
            samples[name].append((time.process_time_ns() - start) / calls)
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_event_cost(cpu: bool = False) -> dict[str, float]:
    client = posthog.Client("phc_bench", transport=_Discard())
    exporter = PosthogSpanExporter(client)
    identity = Identity({"distinct_id": "user-1", "session_id": "session-1"}, TAGS)
    root, chat, bare_chat, tools_chat, tool_call_chat = _spans()
    for span in (root, chat, bare_chat, tools_chat, tool_call_chat):
        assert exporter.export_span(span, identity) == 1

    contenders: dict[str, Callable[[], object]] = {
        "root": lambda: exporter.export_span(root, identity),
        "generation": lambda: exporter.export_span(chat, identity),
        "no_content": lambda: exporter.export_span(bare_chat, identity),
    }
    if cpu:
        contenders["tools"] = lambda: exporter.export_span(tools_chat, identity)
        contenders["tool_call"] = lambda: exporter.export_span(tool_call_chat, identity)
    return _cpu_compare(contenders, 5_000) if cpu else compare(contenders, calls=5_000)


def run() -> list[str]:
    a = bench_event_cost()
    c = bench_event_cost(cpu=True)
    return [
        f"(a) event cost per span: plain root span {a['root'] / 1000:.2f} us, "
        f"GenAI chat span ($ai_generation) {a['generation'] / 1000:.2f} us",
        ratio_line("    $ai_generation vs plain root span event", a["generation"], a["root"], 1.5),
        ratio_line(
            "(b) $ai_generation without message content vs plain root span event",
            a["no_content"],
            a["root"],
            1.5,
        ),
        f"(c) in CPU time: $ai_generation {c['generation'] / c['root']:.2f}x, without content "
        f"{c['no_content'] / c['root']:.2f}x a plain root span's event "
        f"({c['root'] / 1000:.2f} us)",
        f"(d) in CPU time: $ai_generation with system instructions and tool definitions "
        f"{c['tools'] / c['root']:.2f}x a plain root span's event",
        f"(e) in CPU time: $ai_generation whose reply is a tool call "
        f"{c['tool_call'] / c['root']:.2f}x a plain root span's event",
    ]


if __name__ == "__main__":
    for line in run():
        print(line)
