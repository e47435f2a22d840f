"""Content made only of single-text messages from the JSON message attributes is not measured
against ``ai_max_content_bytes`` when its source text proves it fits: its JSON is at most 6
bytes per source character, whatever the text holds (escapes, non-ASCII, astral characters,
lone surrogates, numbers or objects as roles), and the event is the same as when measured."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posthog_otel.spans import genai
from posthog_otel.spans.genai import TRUNCATED_MARKER, AiOptions, AiSpan, ai_properties
from posthog_otel.spans.genai_content import content_and_source_size

_SIZE_FACTOR = 6  # the factor genai's size bound uses

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def _messages(draw: st.DrawFn) -> list[dict[str, Any]]:
    messages = []
    for _ in range(draw(st.integers(0, 4))):
        part = {"type": "text", "content": draw(st.text())}
        message: dict[str, Any] = {"parts": [part]}
        if draw(st.booleans()):
            message["role"] = draw(_json_values)
        if draw(st.booleans()):
            message = {"parts": [part], **message}  # parts first
        if draw(st.booleans()):
            message["finish_reason"] = draw(st.text())
        messages.append(message)
    return messages


def _encoded(messages: list[dict[str, Any]], compact: bool, ascii_only: bool) -> str:
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(messages, separators=separators, ensure_ascii=ascii_only)


def _size(value: Any) -> int:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return len(text.encode("utf-8", "replace"))


@settings(max_examples=400, deadline=None)
@given(_messages(), _messages(), st.booleans(), st.booleans())
def test_single_text_content_is_at_most_six_bytes_per_source_character(
    inputs: list[dict[str, Any]], outputs: list[dict[str, Any]], compact: bool, ascii_only: bool
) -> None:
    attributes = {
        "gen_ai.input.messages": _encoded(inputs, compact, ascii_only),
        "gen_ai.output.messages": _encoded(outputs, compact, ascii_only),
    }
    found, source = content_and_source_size(attributes, ())
    assert source == sum(map(len, attributes.values()))  # the fast path took every message
    for value in found.values():
        assert _size(value) <= _SIZE_FACTOR * source


def test_other_content_has_no_source_size() -> None:
    text_only = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])
    cases: list[dict[str, Any]] = [
        {"gen_ai.input.messages": "[{}, {}, {}]"},  # defaults added: more than 6x
        {"gen_ai.input.messages": text_only, "gen_ai.system_instructions": "be brief"},
        {"gen_ai.input.messages": text_only, "gen_ai.tool.definitions": '[{"name": "f"}]'},
        {"gen_ai.input.messages": text_only + " "},  # not exactly the JSON text
        {"gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": "hi"},
        {"gen_ai.input.messages": ("not", "json")},
    ]
    for attributes in cases:
        assert content_and_source_size(attributes, ())[1] is None, attributes


def _properties(attributes: dict[str, Any], limit: int) -> dict[str, Any]:
    span = AiSpan("chat", attributes, (), 1, 2, None, 0, 1, False, None)
    return ai_properties(span, "$ai_generation", AiOptions(max_content_bytes=limit))


@settings(max_examples=300, deadline=None)
@given(_messages(), _messages(), st.integers(10, 2000), st.booleans())
def test_an_event_is_the_same_as_when_its_content_is_measured(
    inputs: list[dict[str, Any]], outputs: list[dict[str, Any]], limit: int, ascii_only: bool
) -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": json.dumps(inputs, ensure_ascii=ascii_only),
        "gen_ai.output.messages": json.dumps(outputs, ensure_ascii=ascii_only),
    }
    props = _properties(attributes, limit)
    with pytest.MonkeyPatch.context() as patch:  # no source size: always measured
        patch.setattr(
            genai,
            "content_and_source_size",
            lambda *args, **kwargs: (content_and_source_size(*args, **kwargs)[0], None),
        )
        measured = _properties(attributes, limit)
    assert props == measured
    for key in ("$ai_input", "$ai_output_choices"):
        value = props[key]
        assert _size(value) <= limit or (
            isinstance(value, str) and value.endswith(TRUNCATED_MARKER)
        )


def _within_cap(value: Any, limit: int) -> bool:
    if isinstance(value, str) and value.endswith(TRUNCATED_MARKER):
        return len(value.encode("utf-8", "replace")) <= max(limit, len(TRUNCATED_MARKER.encode()))
    return _size(value) <= limit


def test_content_that_reshaping_makes_larger_than_its_source_is_still_capped() -> None:
    # 3 source characters per message, each made a full PostHog message with its defaults
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.output.messages": "[" + ",".join(["{}"] * 1000) + "]",
    }
    props = _properties(attributes, 20_000)
    assert props["$ai_output_choices"].endswith(TRUNCATED_MARKER)
    assert _within_cap(props["$ai_output_choices"], 20_000)
    assert props["$ai_content_truncated"] is True


_MESSAGE_KEYS = st.sampled_from(["role", "parts", "content", "finish_reason", "tool_calls", "name"])
_any_messages = st.lists(
    st.one_of(_json_values, st.dictionaries(_MESSAGE_KEYS, _json_values, max_size=4)),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(_any_messages, _any_messages, st.integers(10, 400))
def test_content_of_any_shape_never_exceeds_the_cap(
    inputs: list[Any], outputs: list[Any], limit: int
) -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": json.dumps(inputs),
        "gen_ai.output.messages": json.dumps(outputs),
        "gen_ai.system_instructions": json.dumps(inputs[:1]),
    }
    props = _properties(attributes, limit)
    for key in ("$ai_input", "$ai_output_choices", "$ai_tools"):
        if key in props:
            assert _within_cap(props[key], limit), (key, props[key])
