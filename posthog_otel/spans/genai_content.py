"""The content of GenAI spans in PostHog's message shapes: pure functions over attributes and
span events, for :mod:`posthog_otel.spans.genai`.

Usage::

    found = content_properties(attributes, span_events)   # $ai_input, $ai_output_choices, $ai_tools
    state = tool_state(attributes)                         # $ai_input_state, $ai_output_state
    found, chars = content_and_source_size(attributes, span_events)  # chars: None, or the
    # source text's length when the content's JSON is known to be at most 6 bytes per char
    text = json_text(value)                                # compact JSON, as it is measured

Sources, first found wins for each property: the GenAI semantic conventions' JSON attributes
(``gen_ai.input.messages``, ``gen_ai.output.messages``, ``gen_ai.system_instructions``,
``gen_ai.tool.definitions``), the older indexed attributes OpenLLMetry writes
(``gen_ai.prompt.N.*``, ``gen_ai.completion.N.*``, ``llm.request.functions.N.*``), span events
and log records joined to the span (:mod:`.genai_logs`): per message (``gen_ai.user.message``,
``gen_ai.choice``...) or the details event (``gen_ai.client.inference.operation.details``,
which carries the JSON attributes' content). Shapes follow PostHog's OpenAI-like ones:
input ``{"role", "content", "tool_calls"?, "tool_call_id"?}``, output ``{"role", "content":
[{"type": "text", "text"}, {"type": "function", "id", "function": {"name", "arguments"}}]}``,
tools ``{"type": "function", "function": {"name", "description", "parameters"}}``.

(Over 450 lines on purpose: every content source and its shapes live here, so the order in
which they are tried reads in one function, :func:`content_and_source_size`, next to the size
bound that rests on exactly those shapes.)
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "content_and_source_size",
    "content_properties",
    "embedding_input",
    "first",
    "json_text",
    "json_value",
    "number",
    "tool_state",
]

_INPUT_EVENT_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
# an indexed list is read only when its item 0 has one of these (OpenLLMetry writes them)
_FIRST_FIELDS = ("role", "content", "name", "finish_reason", "tool_calls.0.name")
_INDEXED_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.request.functions.")
_FIRST_KEYS = {
    prefix: frozenset(prefix + "0." + field for field in _FIRST_FIELDS)
    for prefix in _INDEXED_PREFIXES
}
_ALL_FIRST_KEYS = frozenset().union(*_FIRST_KEYS.values())
_FUNCTION_FIRST_KEYS = _FIRST_KEYS["llm.request.functions."]  # indexed tool definitions
_TOOL_KEYS = _FUNCTION_FIRST_KEYS | {"gen_ai.tool.definitions"}  # where tools may come from
# every attribute content may come from: a span with none of them (and no events) has none
_CONTENT_KEYS = frozenset(
    {
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.embeddings.input",
        "gen_ai.input",
    }
).union(_ALL_FIRST_KEYS)
_MAX_INDEXED = 1000  # indexed messages/tools read per span: bounds hostile input

# -- reading attribute values -------------------------------------------------------------


def first(attributes: Mapping[str, Any], names: Iterable[str]) -> Any:
    for name in names:
        value = attributes.get(name)
        if value is not None:
            return value
    return None


# the C scanner behind json.loads, called directly: (value, end), StopIteration when no JSON
# value starts at the index, ValueError for malformed JSON
_DECODER = json.JSONDecoder()
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


# json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str) without building
# an encoder per call: the C encoder made once (no cycle check: decoded JSON and attribute
# values hold no cycles), else the pure-Python one
_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)
_ENCODE: Callable[[Any, int], Sequence[str]] | None = (
    None
    if _C_ENCODER is None
    else _C_ENCODER(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True)
)
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def json_text(value: Any) -> str:
    """``value`` as compact JSON text (non-ASCII kept, unknown objects as their ``str``)."""
    if _ENCODE is None:
        return _ENCODER.encode(value)
    return "".join(_ENCODE(value, 0))


def _exact_json(value: Any) -> tuple[Any, int | None]:
    """:func:`json_value`, and the length of ``value`` when it was decoded from exactly that
    text (a JSON array or object, no padding); None otherwise."""
    if type(value) is str and value[:1] in ("[", "{"):
        try:
            decoded, end = _SCAN(value, 0)
        except (ValueError, StopIteration, RecursionError):  # not JSON, or nested too deep
            return json_value(value), None
        if end == len(value):
            return decoded, end
    return json_value(value), None


def json_value(value: Any) -> Any:
    """An attribute holding JSON text, decoded; other values as they are (tuples as lists)."""
    if type(value) is str and value[:1] in ("[", "{"):  # most JSON attributes: no padding
        try:
            decoded, end = _SCAN(value, 0)
        except (ValueError, StopIteration, RecursionError):  # not JSON, or nested too deep
            return value
        if end == len(value):
            return decoded
        # text after the JSON value: trailing space is fine, anything else is not JSON
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text)
            except (ValueError, RecursionError):
                return value
        return value
    if isinstance(value, tuple):
        return list(value)
    return value


def number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _arguments_text(value: Any) -> Any:
    """Tool-call arguments as OpenAI sends them: JSON text."""
    if value is None or type(value) is str or isinstance(value, str):
        return value
    return json_text(value)


# -- semantic-convention messages to PostHog's shape ---------------------------------------


def _part_text(part: Mapping[str, Any]) -> str | None:
    content = part.get("content", part.get("text"))
    return content if isinstance(content, str) else None


def _tool_call(part: Mapping[str, Any]) -> dict[str, Any]:
    function = part.get("function")
    if function is not None and isinstance(function, Mapping):  # already OpenAI's shape
        name, arguments = function.get("name"), function.get("arguments")
    else:
        name, arguments = part.get("name"), part.get("arguments")
    return {
        "type": "function",
        "id": part.get("id"),
        "function": {"name": name, "arguments": _arguments_text(arguments)},
    }


def _single_text(message: Any) -> str | None:
    """The text of a message made of one text part (most messages), else None."""
    if type(message) is dict:
        parts = message.get("parts")
        if type(parts) is list and len(parts) == 1:
            part = parts[0]
            if type(part) is dict and part.get("type") == "text":
                text = part.get("content")
                if type(text) is str:
                    return text
    return None


def _input_message(message: Any) -> dict[str, Any] | None:
    """One semconv input message (``{"role", "parts": [...]}``) in PostHog's input shape."""
    text = _single_text(message)
    if text is not None:  # the common case, decided without the general walk below
        return {"role": message.get("role") or "user", "content": text}
    if not isinstance(message, Mapping):
        return None
    role = str(message.get("role") or "user")
    parts = message.get("parts")
    if not isinstance(parts, list):  # an OpenAI-shaped message already
        result = {"role": role, "content": message.get("content")}
        for key in ("tool_calls", "tool_call_id", "name"):
            if message.get(key) is not None:
                result[key] = message[key]
        return result
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    result = {"role": role, "content": None}
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind == "tool_call":
            calls.append(_tool_call(part))
        elif kind == "tool_call_response":
            response = _arguments_text(part.get("response", part.get("result")))
            if response is not None:  # a response the instrumentation did not record
                texts.append(response)
            if part.get("id") is not None:
                result["tool_call_id"] = part["id"]
        else:
            text = _part_text(part)
            if text is not None:
                texts.append(text)
    if texts:
        result["content"] = "".join(texts) if len(texts) == 1 else "\n".join(texts)
    if calls:
        result["tool_calls"] = calls
    return result


def _output_message(message: Any) -> dict[str, Any] | None:
    """One semconv output message in PostHog's output shape (content as a list of blocks)."""
    text = _single_text(message)
    if text is not None:
        role = message.get("role") or "assistant"
        return {"role": role, "content": [{"type": "text", "text": text}] if text else []}
    if not isinstance(message, Mapping):
        return None
    role = str(message.get("role") or "assistant")
    blocks: list[dict[str, Any]] = []
    parts = message.get("parts")
    if isinstance(parts, list):
        for part in parts:
            if type(part) is not dict and not isinstance(part, Mapping):
                continue
            if part.get("type") == "tool_call":
                blocks.append(_tool_call(part))
            else:
                text = _part_text(part)
                if text:
                    blocks.append({"type": "text", "text": text})
    else:  # OpenAI-shaped: {"role", "content", "tool_calls"}
        content = message.get("content")
        if isinstance(content, str) and content:
            blocks.append({"type": "text", "text": content})
        elif isinstance(content, list):
            blocks.extend(block for block in content if isinstance(block, dict))
        calls = json_value(message.get("tool_calls"))
        if isinstance(calls, list):
            blocks.extend(_tool_call(call) for call in calls if isinstance(call, Mapping))
    return {"role": role, "content": blocks}


def _system_message(instructions: Any) -> dict[str, Any] | None:
    if isinstance(instructions, str):
        return {"role": "system", "content": instructions}
    if isinstance(instructions, list):
        texts = []
        for part in instructions:
            if type(part) is dict or isinstance(part, Mapping):
                text = part.get("content", part.get("text"))  # as _part_text
                if text and isinstance(text, str):
                    texts.append(text)
        if texts:
            return {"role": "system", "content": "\n".join(texts)}
    return None


def _tool_definition(tool: Any) -> Any:
    """A flat ``{"type": "function", "name", ...}`` definition in OpenAI's nested shape."""
    if (
        (type(tool) is dict or isinstance(tool, Mapping))
        and "name" in tool
        and "function" not in tool
    ):
        function = dict(tool)
        kind = function.pop("type", None)
        parameters = function.get("parameters")
        if isinstance(parameters, str):
            function["parameters"] = json_value(parameters)
        return {"type": kind or "function", "function": function}
    return tool


# -- the older indexed attributes (OpenLLMetry) --------------------------------------------


def _indexed(attributes: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.N.key`` attributes grouped by N, in order: ``[{key: value}, ...]``."""
    first_keys = _FIRST_KEYS.get(prefix)
    if first_keys is not None and first_keys.isdisjoint(attributes):
        return []  # most spans: no indexed attributes, decided without a scan
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if not index.isdigit() or not rest or len(groups) >= _MAX_INDEXED:
            continue
        groups.setdefault(int(index), {})[rest] = value
    return [groups[index] for index in sorted(groups)]


def _indexed_calls(fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    calls = _indexed(fields, "tool_calls.")
    return [_tool_call(call) for call in calls]


def _indexed_input(attributes: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    prompts = _indexed(attributes, "gen_ai.prompt.")
    if not prompts:
        return None
    messages = []
    for fields in prompts:
        message: dict[str, Any] = {
            "role": str(fields.get("role") or "user"),
            "content": json_value(fields.get("content")),
        }
        calls = _indexed_calls(fields)
        if calls:
            message["tool_calls"] = calls
        if fields.get("tool_call_id") is not None:
            message["tool_call_id"] = fields["tool_call_id"]
        messages.append(message)
    return messages


def _indexed_output(attributes: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    completions = _indexed(attributes, "gen_ai.completion.")
    if not completions:
        return None
    messages = []
    for fields in completions:
        blocks: list[dict[str, Any]] = []
        content = fields.get("content")
        if isinstance(content, str) and content:
            blocks.append({"type": "text", "text": content})
        blocks.extend(_indexed_calls(fields))
        messages.append({"role": str(fields.get("role") or "assistant"), "content": blocks})
    return messages


def _indexed_tools(attributes: Mapping[str, Any]) -> list[Any] | None:
    functions = _indexed(attributes, "llm.request.functions.")
    if not functions:
        return None
    return [_tool_definition({"type": "function", **fields}) for fields in functions]


# -- content sent as span events (contrib openai-v2 and others) ----------------------------


def _listed(value: Any) -> Any:
    """Log-record attribute values (tuples, nested) as JSON-like lists and dicts."""
    if isinstance(value, tuple | list):
        return [_listed(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _listed(item) for key, item in value.items()}
    return value


_DETAILS_EVENTS = ("gen_ai.client.inference.operation.details", "gen_ai.content.prompt")


def _event_messages(
    events: Sequence[Any],
) -> tuple[list[Any] | None, list[Any] | None, dict[str, Any]]:
    """Inputs and outputs from per-message events, and the attributes of a details event
    (``gen_ai.client.inference.operation.details``: the JSON attributes' content)."""
    inputs: list[Any] = []
    outputs: list[Any] = []
    details: dict[str, Any] = {}
    for event in events:
        name = event.name
        if not name.startswith("gen_ai."):
            continue
        data = event.attributes or {}
        role = _INPUT_EVENT_ROLES.get(name)
        if role is not None:
            message: dict[str, Any] = {"role": role, "content": json_value(data.get("content"))}
            calls = json_value(data.get("tool_calls"))
            if isinstance(calls, list):
                message["tool_calls"] = [_tool_call(c) for c in calls if isinstance(c, Mapping)]
            if role == "tool" and data.get("id") is not None:
                message["tool_call_id"] = data["id"]
            inputs.append(message)
        elif name == "gen_ai.choice":
            body = json_value(data.get("message"))
            if not isinstance(body, Mapping):
                body = {"role": "assistant", "content": data.get("content")}
            outputs.append(_output_message(body))
        elif name in _DETAILS_EVENTS:
            for key, value in data.items():
                if key in _CONTENT_KEYS:
                    details.setdefault(key, _listed(value))
            prompt = data.get("gen_ai.prompt")
            if prompt is not None and "gen_ai.input.messages" not in details:
                details["gen_ai.input.messages"] = _listed(prompt)
        elif name == "gen_ai.content.completion" and "gen_ai.output.messages" not in details:
            completion = data.get("gen_ai.completion")
            if completion is not None:
                details["gen_ai.output.messages"] = _listed(completion)
    return inputs or None, outputs or None, details


# -- the properties -----------------------------------------------------------------------


def _messages(value: Any, output: bool) -> tuple[list[Any] | None, int | None]:
    """A JSON messages attribute (semconv ``parts`` or OpenAI-shaped) in PostHog's shape, and
    the length of ``value`` when they were decoded from exactly its text and every message is
    ``{"role"?: str, "parts": [...]}`` (or no object at all, which is dropped): their JSON is
    then at most 6 bytes per character of it (see :func:`content_and_source_size`).

    Messages that are all ``{"role", "parts": [{"type": "text", "content": str}]}`` (what most
    instrumentations record) take a tight loop that builds what :func:`_input_message` and
    :func:`_output_message` would; from the first message of any other shape (it fails one of
    the loop's lookups: ``TypeError``: not a dict, ``parts`` not a one-item list of dicts;
    ``KeyError``; ``ValueError``: not one part; or its checks) on, each message takes the
    general conversion."""
    source = None
    if type(value) is str and value[:1] == "[":  # JSON text without padding: decoded here
        try:
            decoded, end = _SCAN(value, 0)
        except (ValueError, StopIteration, RecursionError):  # not JSON, or nested too deep
            return None, None  # not JSON: json_value would return the text, which is no list
        if end == len(value):
            source = end
        else:
            decoded = json_value(value)  # trailing text: the general rules decide
    elif value is None:
        return None, None
    else:
        decoded = json_value(value)
    if not isinstance(decoded, list):
        return None, None
    result: list[dict[str, Any]] = []
    append = result.append
    try:
        for message in decoded:
            (part,) = message["parts"]
            if part["type"] != "text":  # a tool call, most often: no exception raised
                break
            text = part["content"]
            if type(text) is not str or type(message) is not dict:
                break
            if output:
                append(
                    {
                        "role": message.get("role") or "assistant",
                        "content": [{"type": "text", "text": text}] if text else [],
                    }
                )
            else:
                append({"role": message.get("role") or "user", "content": text})
        else:
            return result, source
    except (TypeError, KeyError, ValueError):
        pass
    convert = _output_message if output else _input_message
    for index in range(len(result), len(decoded)):  # each message the loop took added one
        message = decoded[index]
        converted = convert(message)
        if converted is not None:
            append(converted)
        if source is not None and type(message) is dict:
            role = message.get("role")
            if type(message.get("parts")) is not list or (
                role is not None and type(role) is not str
            ):
                source = None  # OpenAI-shaped (defaults added) or a role made text by str()
    return result, source


def content_properties(
    attributes: Mapping[str, Any], events: Sequence[Any], tools_only: bool = False
) -> dict[str, Any]:
    """``$ai_input``, ``$ai_output_choices`` and ``$ai_tools`` from the first source that has
    each (before ``posthog.ai.*`` overrides, applied by the caller); only ``$ai_tools`` when
    ``tools_only`` (privacy mode: the messages are never read)."""
    return content_and_source_size(attributes, events, tools_only)[0]


def content_and_source_size(
    attributes: Mapping[str, Any], events: Sequence[Any], tools_only: bool = False
) -> tuple[dict[str, Any], int | None]:
    """:func:`content_properties`, and the characters of the JSON text it was decoded from
    when that bounds it: the JSON of each property (compact, UTF-8) is then at most 6 bytes
    per character. None otherwise (the caller measures the content).

    Bounded: messages from ``gen_ai.input.messages``/``gen_ai.output.messages`` that are each
    ``{"role"?: str, "parts": [...]}`` (or no object: dropped), system instructions that are a
    JSON list of parts, and tool definitions in ``gen_ai.tool.definitions`` whose flat ones
    have a ``type``; each attribute JSON text exactly (no padding). Why 6:

    * A JSON value decoded and encoded again takes at most 4.5 bytes per source character:
      text at most 4 UTF-8 bytes per character (an escape re-encodes to no more than it took),
      a number at most 4.5 (``1e15`` comes back as ``1000000000000000.0``), the rest 1:1.
      Tool-call arguments made JSON text and written as a string double only quotes and
      backslashes (Anthropic's shape decodes them again).
    * What the reshaping adds is smaller than the source it needs: a message's role and its
      ``content`` (at most ``{"role":"assistant","content":[]}``, 33 bytes) come from at least
      ``{"parts":[]}`` (12); a text block's 25 bytes from a part of at least 12; a tool call's
      70 (ids and names null, ``"function":{...}``) from ``{"type":"tool_call"}`` (20); the
      system message's 30 from ``[{"text":"x"}]`` (14), 2 per further part of at least 13; a
      typed flat tool's ``"function":{`` and ``}`` (13) from at least 19.
    * A role is kept as text; a role of another type would be written by ``str()``, whose
      escapes are not bounded, so such messages are measured, as are OpenAI-shaped messages
      (``{}`` becomes ``{"role":"user","content":null}``), tools given no ``type``, plain-text
      instructions and every other source.

    ``tests/unit/spans/test_genai_content_size.py`` checks this on adversarial shapes."""
    found: dict[str, Any] = {}
    input_messages = attributes.get("gen_ai.input.messages")
    output_messages = attributes.get("gen_ai.output.messages")
    if (
        input_messages is None
        and output_messages is None
        and not events
        and _CONTENT_KEYS.isdisjoint(attributes)
    ):
        return found, None  # content not recorded (the instrumentations' default)
    if tools_only:
        return found, _tools(attributes, attributes, found)
    inputs, input_source = _messages(input_messages, False)
    instructions = attributes.get("gen_ai.system_instructions")
    if instructions is not None:
        decoded, instructions_source = _exact_json(instructions)
        system = _system_message(decoded)
        if system is not None:
            if inputs is None:
                inputs, input_source = [system], instructions_source
            else:
                inputs.insert(0, system)
                if input_source is not None:
                    # a plain-text instruction is not bounded by its length: measured
                    input_source = (
                        None if instructions_source is None else input_source + instructions_source
                    )
    outputs, output_source = _messages(output_messages, True)
    if inputs is None or outputs is None:  # OpenLLMetry's indexed attributes
        if inputs is None and not _ALL_FIRST_KEYS.isdisjoint(attributes):
            inputs = _indexed_input(attributes)
        if outputs is None and not _ALL_FIRST_KEYS.isdisjoint(attributes):
            outputs = _indexed_output(attributes)
    tools_source: Mapping[str, Any] = attributes
    source_size = 0
    if (inputs is None or outputs is None) and events:
        event_inputs, event_outputs, details = _event_messages(events)
        if details:  # the details event holds what the JSON attributes would
            from_details = content_properties(details, ())
            event_inputs = event_inputs or from_details.get("$ai_input")
            event_outputs = event_outputs or from_details.get("$ai_output_choices")
            if "gen_ai.tool.definitions" not in attributes:
                tools_source = details
        inputs = inputs if inputs is not None else event_inputs
        outputs = outputs if outputs is not None else event_outputs
    if inputs is None:  # embeddings, and instrumentations that send the input as text
        text = attributes.get("gen_ai.embeddings.input") or attributes.get("gen_ai.input")
        if text is not None:
            found["$ai_input"] = json_value(text)
    else:
        found["$ai_input"] = inputs
    if outputs is not None:
        found["$ai_output_choices"] = outputs
    if (
        not _TOOL_KEYS.isdisjoint(attributes)
        if tools_source is attributes
        else "gen_ai.tool.definitions" in tools_source
        or not _FUNCTION_FIRST_KEYS.isdisjoint(attributes)
    ):
        tools_source_size = _tools(attributes, tools_source, found)
        if "$ai_tools" in found:
            if tools_source_size is None:
                return found, None
            source_size += tools_source_size
    if input_source is None:
        if "$ai_input" in found:
            return found, None
        input_source = 0
    if output_source is None:
        if "$ai_output_choices" in found:
            return found, None
        output_source = 0
    return found, source_size + input_source + output_source


def _tools(
    attributes: Mapping[str, Any], source: Mapping[str, Any], found: dict[str, Any]
) -> int | None:
    """``$ai_tools`` from the tool definitions (JSON) in ``source``, else the indexed ones in
    ``attributes``; the length of the JSON text when the definitions were decoded from exactly
    it and each flat one has a ``type`` (they then take at most 6 bytes per character)."""
    definitions = source.get("gen_ai.tool.definitions")
    if definitions is None:
        tools, size = None, None
    else:
        tools, size = _exact_json(definitions)
    if isinstance(tools, list):
        converted = []
        for tool in tools:
            definition = _tool_definition(tool)
            if definition is not tool and not tool.get("type"):
                size = None  # "type": "function" added: not bounded by the source's length
            converted.append(definition)
        found["$ai_tools"] = converted
        return size
    indexed = _indexed_tools(attributes)
    if indexed is not None:
        found["$ai_tools"] = indexed
    return None


def tool_state(attributes: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    arguments = attributes.get("gen_ai.tool.call.arguments")
    if arguments is not None:
        found["$ai_input_state"] = json_value(arguments)
    result = attributes.get("gen_ai.tool.call.result")
    if result is not None:
        found["$ai_output_state"] = json_value(result)
    return found


def embedding_input(value: Any) -> Any:
    """What was embedded, as the caller gave it: user messages that hold only text become
    that text (one message) or a list of texts; anything else is kept as it is."""
    if not isinstance(value, list) or not value:
        return value
    texts = []
    for message in value:
        if not (isinstance(message, Mapping) and message.get("role") == "user"):
            return value
        if set(message) - {"role", "content"} or not isinstance(message.get("content"), str):
            return value
        texts.append(message["content"])
    return texts[0] if len(texts) == 1 else texts
