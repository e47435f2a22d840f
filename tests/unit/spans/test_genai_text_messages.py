"""Messages made only of single text parts (the common case, converted in one tight loop) take
exactly the shapes the general per-message conversion gives, and anything else falls back to
it: mixed lists, several parts, tool calls, non-text parts, malformed items."""

from __future__ import annotations

import json
from typing import Any

import pytest

from posthog_otel.spans.genai_content import (
    _input_message,
    _output_message,
    content_properties,
)


def _text(role: str | None, text: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"parts": [{"type": "text", "content": text}]}
    if role is not None:
        message["role"] = role
    return message


def _content(inputs: list[Any], outputs: list[Any]) -> dict[str, Any]:
    return content_properties(
        {
            "gen_ai.input.messages": json.dumps(inputs),
            "gen_ai.output.messages": json.dumps(outputs),
        },
        (),
    )


def test_text_messages_in_posthog_shape() -> None:
    found = _content(
        [_text("system", "Be brief."), _text("user", "Hi"), _text(None, "again")],
        [{**_text("assistant", "Hello!"), "finish_reason": "stop"}, _text(None, "")],
    )
    assert found["$ai_input"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "again"},
    ]
    assert found["$ai_output_choices"] == [
        {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
        {"role": "assistant", "content": []},
    ]


FALLBACKS = [
    pytest.param(
        [_text("user", "a"), {"role": "user", "parts": [{"type": "text", "content": "b"}] * 2}],
        id="two-parts",
    ),
    pytest.param(
        [
            _text("user", "look it up"),
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": {"q": 1}}],
            },
        ],
        id="tool-call",
    ),
    pytest.param([_text("user", "a"), {"role": "user", "content": "openai shape"}], id="openai"),
    pytest.param([_text("user", "a"), "not a message", 7], id="malformed"),
    pytest.param([_text("user", 42)], id="non-text-content"),
    pytest.param([{"role": "user", "parts": [{"type": "image", "content": "x"}]}], id="image"),
    pytest.param([_text("tool", "a"), {"role": "user", "parts": "text"}], id="parts-not-list"),
]


@pytest.mark.parametrize("messages", FALLBACKS)
def test_other_messages_converted_one_by_one(messages: list[Any]) -> None:
    found = _content(messages, messages)
    decoded = json.loads(json.dumps(messages))
    expected_in = [m for m in map(_input_message, decoded) if m is not None]
    expected_out = [m for m in map(_output_message, decoded) if m is not None]
    assert found["$ai_input"] == expected_in
    assert found["$ai_output_choices"] == expected_out
    assert len(expected_in) >= 1  # each case converts at least one message


def test_tool_call_kept_after_a_text_message() -> None:
    found = _content(
        [
            _text("user", "weather?"),
            {
                "role": "assistant",
                "parts": [{"type": "tool_call", "id": "c1", "name": "get", "arguments": {"a": 1}}],
            },
        ],
        [],
    )
    assert found["$ai_input"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"type": "function", "id": "c1", "function": {"name": "get", "arguments": '{"a":1}'}}
        ],
    }
    assert found["$ai_output_choices"] == []
