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
from posthog_otel.spans.genai_content import (
    _input_message,
    _output_message,
    _system_message,
    content_and_source_size,
)

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


def _always_measured_properties(attributes: dict[str, Any], limit: int) -> dict[str, Any]:
    """The event's properties when no content has a source size: every property measured."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            genai,
            "content_and_source_size",
            lambda *args, **kwargs: (content_and_source_size(*args, **kwargs)[0], None),
        )
        return _properties(attributes, limit)


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
    measured = _always_measured_properties(attributes, limit)
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


# -- tool definitions, system instructions, messages made of any parts ----------------------
# The bound for these shapes, written out where the bound is used (genai_content): a JSON value
# decoded and encoded again takes at most 4.5 bytes per source character (a float written
# `1e15` comes back as `1000000000000000.0`; text at most 4 UTF-8 bytes per character), and
# what the reshaping adds per message, part or tool is less than the source text it needs.


class _Raw(str):
    """JSON text written into the source as it is (numbers JSON encoders never write)."""


_RAW_NUMBERS = st.sampled_from(["1e15", "9e15", "-1e15", "1E400", "1e5", "0e0", "1e-7", "-0"])
_tricky_text = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", "\x00", "\x1f", '"', "\\", "\U0001f600", "\ud800", "\u2028", "é"]),
)
_source_scalars = st.one_of(
    _RAW_NUMBERS.map(_Raw),
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.floats(allow_nan=False, allow_infinity=False),
    _tricky_text,
)
_source_values = st.recursive(
    _source_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_tricky_text, inner, max_size=3),
    max_leaves=6,
)


def _source(value: Any, compact: bool, ascii_only: bool) -> str:
    """JSON text of ``value`` (``_Raw`` parts as they are), shortest or spaced."""
    comma, colon = (",", ":") if compact else (", ", ": ")
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, dict):
        items = (
            json.dumps(k, ensure_ascii=ascii_only) + colon + _source(v, compact, ascii_only)
            for k, v in value.items()
        )
        return "{" + comma.join(items) + "}"
    if isinstance(value, list):
        return "[" + comma.join(_source(v, compact, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def _some(draw: st.DrawFn, fields: dict[str, Any]) -> dict[str, Any]:
    """A random subset of ``fields``, in a random order."""
    keys = draw(st.permutations(list(fields)))
    return {key: fields[key] for key in keys if draw(st.booleans())}


@st.composite
def _part(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["text", "tool_call", "tool_call_response", "other", "no dict"]))
    if kind == "no dict":
        return draw(_source_scalars)
    if kind == "text":
        return {
            "type": "text",
            **_some(draw, {"content": draw(_tricky_text), "text": draw(_source_values)}),
        }
    if kind == "tool_call":
        fields = {"id": draw(_source_values), "name": draw(_source_values)}
        if draw(st.booleans()):
            fields["arguments"] = draw(_source_values)
        else:
            fields["function"] = _some(
                draw, {"name": draw(_source_values), "arguments": draw(_source_values)}
            )
        return {"type": "tool_call", **_some(draw, fields)}
    if kind == "tool_call_response":  # (one without a response is not converted at all)
        response = draw(
            st.one_of(_tricky_text, _source_values.map(lambda v: "" if v is None else v))
        )
        key = draw(st.sampled_from(["response", "result"]))
        return {
            "type": "tool_call_response",
            key: response,
            **_some(draw, {"id": draw(_source_values)}),
        }
    return {"type": draw(_tricky_text), **_some(draw, {"content": draw(_source_values)})}


@st.composite
def _parts_message(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(_source_scalars)  # not a message: dropped
    message: dict[str, Any] = {"parts": draw(st.lists(_part(), max_size=4))}
    if draw(st.booleans()):
        message["role"] = draw(st.one_of(_tricky_text, st.none()))
    if draw(st.booleans()):
        message = {"parts": message["parts"], **message}
    if draw(st.booleans()):
        message["finish_reason"] = draw(_tricky_text)
    return message


@st.composite
def _tool(draw: st.DrawFn) -> Any:
    shape = draw(st.integers(0, 5))
    if shape == 0:
        return draw(_source_values)  # kept as it is
    fields: dict[str, Any] = {
        "name": draw(_source_values),
        "description": draw(_tricky_text),
        "parameters": draw(
            st.one_of(_source_values, _source_values.map(lambda v: " " + json.dumps(v) + " "))
        ),
    }
    if shape == 1:
        fields["function"] = draw(_source_values)  # OpenAI's shape already: kept
    tool = _some(draw, fields)
    kind = st.one_of(
        _tricky_text.map(lambda text: text or "function"),
        st.sampled_from(["1e15", "-1e15", "1E400", "1e-7"]).map(_Raw),  # truthy
    )
    return {"type": draw(kind), **tool}


_instructions = st.lists(
    st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "content": _tricky_text}),
        st.fixed_dictionaries({"text": _source_values}),
        _source_scalars,
    ),
    max_size=3,
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(_parts_message(), max_size=4),
    st.lists(_parts_message(), max_size=4),
    st.one_of(st.none(), _instructions),
    st.one_of(st.none(), st.lists(_tool(), max_size=3)),
    st.booleans(),
    st.booleans(),
)
def test_parts_messages_tools_and_instructions_are_at_most_six_bytes_per_source_character(
    inputs: list[Any],
    outputs: list[Any],
    instructions: list[Any] | None,
    tools: list[Any] | None,
    compact: bool,
    ascii_only: bool,
) -> None:
    attributes = {
        "gen_ai.input.messages": _source(inputs, compact, ascii_only),
        "gen_ai.output.messages": _source(outputs, compact, ascii_only),
    }
    if instructions is not None:
        attributes["gen_ai.system_instructions"] = _source(instructions, compact, ascii_only)
    if tools is not None:
        attributes["gen_ai.tool.definitions"] = _source(tools, compact, ascii_only)
    found, source = content_and_source_size(attributes, ())
    # every message a {"role"?: str, "parts": list} or no object, every flat tool typed: proven
    # (instructions with no text make no message and are not counted)
    assert source is not None
    assert source <= sum(map(len, attributes.values()))
    for value in found.values():
        assert _size(value) <= _SIZE_FACTOR * source
    # the text loop and the general conversion it hands over to build what the general one does
    output = [
        m for m in map(_output_message, json.loads(attributes["gen_ai.output.messages"])) if m
    ]
    assert found["$ai_output_choices"] == output
    system = _system_message(json.loads(attributes.get("gen_ai.system_instructions", "null")))
    decoded = json.loads(attributes["gen_ai.input.messages"])
    inputs = [m for m in [system, *map(_input_message, decoded)] if m is not None]
    assert found["$ai_input"] == inputs
    for provider in ("openai", "anthropic"):  # Anthropic's shape: arguments decoded again
        props = _properties({**attributes, "gen_ai.provider.name": provider}, 10**9)
        for key in ("$ai_input", "$ai_output_choices", "$ai_tools"):
            if key in props:
                assert _size(props[key]) <= _SIZE_FACTOR * source, (provider, key)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_parts_message(), max_size=4),
    st.lists(_parts_message(), max_size=4),
    st.one_of(st.none(), _instructions),
    st.one_of(st.none(), st.lists(_tool(), max_size=3)),
    st.integers(10, 2000),
    st.sampled_from(["openai", "anthropic"]),
)
def test_an_event_with_tools_and_tool_calls_is_the_same_as_when_measured(
    inputs: list[Any],
    outputs: list[Any],
    instructions: list[Any] | None,
    tools: list[Any] | None,
    limit: int,
    provider: str,
) -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.input.messages": _source(inputs, True, False),
        "gen_ai.output.messages": _source(outputs, True, False),
    }
    if instructions is not None:
        attributes["gen_ai.system_instructions"] = _source(instructions, True, False)
    if tools is not None:
        attributes["gen_ai.tool.definitions"] = _source(tools, True, False)
    props = _properties(attributes, limit)
    measured = _always_measured_properties(attributes, limit)
    assert props == measured
    for key in ("$ai_input", "$ai_output_choices", "$ai_tools"):
        if key in props:
            assert _within_cap(props[key], limit), (key, props[key])


def test_shapes_the_reshaping_enlarges_have_no_source_size() -> None:
    parts = json.dumps([{"role": "user", "parts": [{"type": "tool_call", "name": "f"}]}])
    cases: list[dict[str, Any]] = [
        {"gen_ai.tool.definitions": '[{"name":0}]'},  # "type": "function" added
        {"gen_ai.tool.definitions": '[{"type":"","name":0}]'},  # the same, type empty
        {"gen_ai.tool.definitions": '[{"type":"function","name":0}] '},  # padded text
        {"gen_ai.input.messages": parts, "gen_ai.system_instructions": "be brief"},  # plain text
        {"gen_ai.input.messages": '[{"role":"user","parts":[]},{}]'},  # OpenAI-shaped: defaults
        {"gen_ai.output.messages": '[{"role":{"a":1},"parts":[]}]'},  # role made text by str()
        {"gen_ai.output.messages": '[{"role":1e15,"parts":[{"type":"x"},{"type":"y"}]}]'},
    ]
    for attributes in cases:
        assert content_and_source_size(attributes, ())[1] is None, attributes
    # the proven shapes
    typed = '[{"type":"function","name":"f","parameters":{"type":"object"}}]'
    for attributes in (
        {"gen_ai.tool.definitions": typed},
        {"gen_ai.input.messages": parts, "gen_ai.system_instructions": '[{"content":"x"}]'},
    ):
        assert content_and_source_size(attributes, ())[1] == sum(map(len, attributes.values()))


def test_messages_after_a_parts_message_that_grow_past_the_bound_are_cut() -> None:
    # a parts message, then OpenAI-shaped ones: 3 source characters each, made 31 bytes
    messages = '[{"role":"user","parts":[{"type":"tool_call"}]},' + ",".join(["{}"] * 1000) + "]"
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.input.messages": messages,
        "gen_ai.tool.definitions": '[{"type":"function","name":"f"}]',
    }
    limit = _SIZE_FACTOR * sum(map(len, attributes.values()))  # what the bound would allow
    props = _properties(attributes, limit)
    assert props["$ai_input"].endswith(TRUNCATED_MARKER)
    assert _within_cap(props["$ai_input"], limit)
    assert props["$ai_content_truncated"] is True
