"""The viewer's LLM analytics: the generations list and an AI event's conversation, with the
events a real client sends (GenAI spans mapped by the span processor) and hostile content."""

from __future__ import annotations

import json

import requests
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as posthog
from posthog_otel import Client, PosthogSpanProcessor
from posthog_otel.sink import SinkServer

XSS = "<script>window.__xss=1</script>"


def _send_generation(sink: SinkServer) -> None:
    client = Client("phc_sink", host=sink.url, flush_at=1)
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(client))
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 7,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": f"Hi {XSS}"}]}]
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [
                        {"type": "text", "content": "Checking the weather"},
                        {"type": "tool_call", "id": "c1", "name": "weather", "arguments": {}},
                    ],
                }
            ]
        ),
    }
    with posthog.new_context():
        posthog.identify_context("user-5")
        provider.get_tracer("t").start_span("chat", attributes=attributes).end()
    assert provider.force_flush(5_000)
    assert client.flush(10)
    provider.shutdown()
    client.shutdown(5)


def test_generations_list_and_conversation(posthog_sink: SinkServer) -> None:
    _send_generation(posthog_sink)
    listing = requests.get(posthog_sink.url + "/llm", timeout=10)
    assert listing.status_code == 200
    html = listing.text
    assert 'id="generations"' in html and "gpt-4o-mini" in html and "user-5" in html
    assert '<td class="num">7</td>' in html and '<td class="num">3</td>' in html
    row = html.split("<tbody>")[1]
    event_id = row.split('href="/events/')[1].split('"')[0]
    page = requests.get(f"{posthog_sink.url}/events/{event_id}", timeout=10).text
    assert "<h2>Conversation</h2>" in page
    conversation = page.split('id="ai-input"')[1]
    assert "Hi &lt;script&gt;window.__xss=1&lt;/script&gt;" in conversation
    assert XSS not in page
    output = page.split('id="ai-output"')[1]
    assert "Checking the weather" in output and "calls <strong>weather</strong>" in output


def test_empty_generations_list(posthog_sink: SinkServer) -> None:
    html = requests.get(posthog_sink.url + "/llm", timeout=10).text
    assert "No $ai_generation events yet." in html
