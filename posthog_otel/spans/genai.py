"""GenAI spans to PostHog LLM analytics events: pure functions over a span's name, attributes
and span events.

Used by :class:`~posthog_otel.spans.mapping.SpanMapper`, so the span processor, the exporter
and the OTLP bridge all turn the same span into the same event.

Usage::

    if is_ai_span(attributes):
        name = ai_event_name(attributes, has_ai_parent=parent_id is not None)
        props = ai_properties(AiSpan(...), AiOptions(privacy_mode=False))

Rules:

* A span is an AI span when it carries ``gen_ai.operation.name``, ``gen_ai.provider.name``,
  ``gen_ai.system``, OpenLLMetry's ``llm.request.type`` or ``posthog.ai.event``.
* Event: ``posthog.ai.event`` when set; else ``chat``/``text_completion``/``generate_content``
  -> ``$ai_generation``; ``embeddings`` -> ``$ai_embedding``; ``invoke_agent``,
  ``create_agent`` and workflow steps with no AI parent -> ``$ai_trace``; everything else
  (tools, nested agents) -> ``$ai_span``.
* Sources, first found wins: ``posthog.ai.<name>`` attributes (become ``$ai_<name>`` as
  given), then the GenAI semantic conventions' JSON attributes (``gen_ai.input.messages``,
  ``gen_ai.output.messages``, ``gen_ai.system_instructions``, ``gen_ai.tool.definitions``),
  then the older indexed attributes (``gen_ai.prompt.N.*``, ``gen_ai.completion.N.*``,
  ``llm.request.functions.N.*``), then span events (``gen_ai.user.message``,
  ``gen_ai.choice``...). Messages take PostHog's OpenAI-like shape: input
  ``{"role", "content", "tool_calls"?, "tool_call_id"?}``, output
  ``{"role", "content": [{"type": "text", "text"}, {"type": "function", "id", "function"}]}``.
* Generations and embeddings carry ``$ai_http_status`` (recorded on the span, else named by
  the error, else 200 for a call that did not fail) and ``$ai_base_url`` (the instrumentation's,
  else ``scheme://host[:port]`` from ``server.address``/``server.port``); every AI event carries
  ``$ai_lib`` (``posthog-otel``) and ``$ai_lib_version``.
* Plain events never carry GenAI content (:func:`is_genai_content`).
* Content the instrumentation did not record is never invented. Privacy mode drops
  ``$ai_input``, ``$ai_output_choices``, ``$ai_input_state``, ``$ai_output_state`` and tool
  arguments/results, and cuts ``$ai_error`` to the error's class name and HTTP status. A
  content property over ``max_content_bytes`` (UTF-8 JSON) is replaced by
  its JSON text cut to that size plus :data:`TRUNCATED_MARKER`; the event is never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..genai_rules import GENAI_PREFIXES, is_genai_content
from .genai_content import (
    content_properties,
    embedding_input,
    json_value,
    number,
    tool_state,
)
from .genai_provider import (
    LIB_PROPERTIES,
    error_summary,
    http_status,
    in_provider_shape,
    server_base_url,
    stop_reason,
)

__all__ = [
    "AI_PARENT_ATTRIBUTE",
    "CONTENT_PROPERTIES",
    "GENAI_PREFIXES",
    "TRUNCATED_MARKER",
    "AiOptions",
    "AiSpan",
    "ai_event_name",
    "ai_properties",
    "is_ai_span",
    "is_genai_content",
]

AI_PREFIX = "posthog.ai."
AI_EVENT_ATTRIBUTE = "posthog.ai.event"
AI_PARENT_ATTRIBUTE = "posthog.ai.parent_id"
"""The span id (16 hex digits) of the nearest AI ancestor, stamped by the span processor."""
TRUNCATED_MARKER = "... [truncated by posthog-otel]"
CONTENT_PROPERTIES = (
    "$ai_input",
    "$ai_output_choices",
    "$ai_input_state",
    "$ai_output_state",
    "$ai_tools",
)
_PRIVATE_PROPERTIES = frozenset(CONTENT_PROPERTIES) - {"$ai_tools"}

_MARKERS = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "llm.request.type",
        AI_EVENT_ATTRIBUTE,
    }
)
_GENERATION_OPS = frozenset(
    {"chat", "text_completion", "generate_content", "completion", "completions", "responses"}
)
_EMBEDDING_OPS = frozenset({"embeddings", "embedding"})
_TRACE_OPS = frozenset({"invoke_agent", "create_agent", "workflow", "invoke_workflow"})

# Scalar sources: property (or "param:<model parameter>") <- attribute names, first wins.
_SOURCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("$ai_model", ("gen_ai.request.model", "gen_ai.response.model")),
    ("$ai_provider", ("gen_ai.provider.name", "gen_ai.system")),
    ("$ai_input_tokens", ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")),
    ("$ai_output_tokens", ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")),
    (
        "$ai_cache_read_input_tokens",
        ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens"),
    ),
    (
        "$ai_cache_creation_input_tokens",
        ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens"),
    ),
    ("$ai_reasoning_tokens", ("gen_ai.usage.reasoning_tokens",)),
    ("$ai_stop_reason", ("gen_ai.response.finish_reasons",)),
    ("$ai_response_id", ("gen_ai.response.id",)),
    ("$ai_base_url", ("gen_ai.openai.api_base", "gen_ai.request.base_url")),
    ("$ai_session_id", ("gen_ai.conversation.id",)),
    ("$ai_agent_name", ("gen_ai.agent.name",)),
    ("$ai_tool_name", ("gen_ai.tool.name",)),
    ("error.type", ("error.type",)),
    ("param:temperature", ("gen_ai.request.temperature", "llm.request.temperature")),
    ("param:max_tokens", ("gen_ai.request.max_tokens", "llm.request.max_tokens")),
    ("param:top_p", ("gen_ai.request.top_p", "llm.top_p")),
    ("param:frequency_penalty", ("gen_ai.request.frequency_penalty", "llm.frequency_penalty")),
    ("param:presence_penalty", ("gen_ai.request.presence_penalty", "llm.presence_penalty")),
    ("param:n", ("gen_ai.request.choice.count",)),
    ("param:stop", ("gen_ai.request.stop_sequences",)),
    ("param:stream", ("gen_ai.request.stream", "gen_ai.is_streaming", "llm.is_streaming")),
)
# attribute name -> (target, rank): one pass over a span's attributes finds every source
_BY_ATTRIBUTE = {
    name: (target, rank) for target, names in _SOURCES for rank, name in enumerate(names)
}
_COUNTS = ("$ai_input_tokens", "$ai_output_tokens")
_OPTIONAL_COUNTS = (
    "$ai_cache_read_input_tokens",
    "$ai_cache_creation_input_tokens",
    "$ai_reasoning_tokens",
)
_DIRECT, _PARAMETER, _COUNT = "direct", "parameter", "count"
_KINDS = {
    **{
        key: _DIRECT
        for key in (
            "$ai_model",
            "$ai_response_id",
            "$ai_base_url",
            "$ai_session_id",
            "$ai_agent_name",
            "$ai_tool_name",
        )
    },
    **{key: _COUNT for key in (*_COUNTS, *_OPTIONAL_COUNTS)},
    **{target: _PARAMETER for target, _ in _SOURCES if target.startswith("param:")},
}
_PROMOTED_PARAMETERS = {
    "temperature": "$ai_temperature",
    "max_tokens": "$ai_max_tokens",
    "stream": "$ai_stream",
}
_CALL_EVENTS = frozenset({"$ai_generation", "$ai_embedding"})
# content and size: strings this long (in characters, all sources together) cannot exceed
# the cap once converted, so the exact JSON size is measured only above it
_SIZE_FACTOR = 6


@dataclass(frozen=True)
class AiOptions:
    """Whether AI spans become AI events, and what of their content is kept."""

    enabled: bool = True
    privacy_mode: bool = False
    max_content_bytes: int = 256 * 1024


class AiSpan(NamedTuple):
    """What :func:`ai_properties` reads from a span (any span model: SDK, OTLP-decoded)."""

    name: str
    attributes: Mapping[str, Any]
    events: Sequence[Any]  # objects with .name and .attributes
    trace_id: int
    span_id: int
    parent_id: str | None  # the nearest AI ancestor's span id (hex), when known
    start_ns: int | None
    end_ns: int | None
    is_error: bool
    error_message: str | None


def is_ai_span(attributes: Mapping[str, Any]) -> bool:
    """Does a span with these attributes describe a GenAI operation?"""
    return not _MARKERS.isdisjoint(attributes)


def _operation(attributes: Mapping[str, Any]) -> str:
    op = attributes.get("gen_ai.operation.name") or attributes.get("llm.request.type")
    return str(op).lower() if op else ""


def ai_event_name(attributes: Mapping[str, Any], has_ai_parent: bool) -> str:
    """``$ai_generation``, ``$ai_embedding``, ``$ai_trace`` or ``$ai_span`` (see the rules)."""
    explicit = attributes.get(AI_EVENT_ATTRIBUTE)
    if explicit:
        return str(explicit)
    op = _operation(attributes)
    if op in _GENERATION_OPS:
        return "$ai_generation"
    if op in _EMBEDDING_OPS:
        return "$ai_embedding"
    if op in _TRACE_OPS and not has_ai_parent:
        return "$ai_trace"
    if not op and not has_ai_parent and "gen_ai.request.model" in attributes:
        return "$ai_generation"  # a provider span without an operation name: a model call
    return "$ai_span"


def _cap(value: Any, limit: int) -> tuple[Any, bool]:
    """``value``, or its JSON text cut to ``limit`` UTF-8 bytes plus the marker."""
    if isinstance(value, str) and len(value) * 4 <= limit:
        return value, False
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    )
    if len(text) * 4 <= limit:
        return value, False
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return value, False
    cut = encoded[: max(limit - len(TRUNCATED_MARKER), 0)].decode("utf-8", "ignore")
    return cut + TRUNCATED_MARKER, True


def ai_properties(span: AiSpan, event_name: str, options: AiOptions) -> dict[str, Any]:
    """The ``$ai_*`` properties of one AI span's event (identity and tags are the caller's)."""
    attributes = span.attributes
    props: dict[str, Any] = {"$ai_trace_id": format(span.trace_id, "032x")}
    span_id = format(span.span_id, "016x")
    if event_name == "$ai_trace":
        props["$ai_span_id"] = span_id
    else:
        props["$ai_span_id"] = span_id
        if event_name == "$ai_generation":
            props["$ai_generation_id"] = span_id
        if span.parent_id:
            props["$ai_parent_id"] = span.parent_id
    props["$ai_span_name"] = span.name
    found: dict[str, Any] = {}  # target -> value of its first-ranked source present
    ranks: dict[str, int] = {}  # target -> rank of that source, when not the first name
    overrides: dict[str, Any] = {}
    for key, value in attributes.items():
        spec = _BY_ATTRIBUTE.get(key)
        if spec is not None:
            if value is None:
                continue
            target, rank = spec
            if target not in found or rank < ranks.get(target, 0):
                found[target] = value
                if rank:
                    ranks[target] = rank
        elif key.startswith(AI_PREFIX) and key not in (AI_EVENT_ATTRIBUTE, AI_PARENT_ATTRIBUTE):
            overrides["$ai_" + key[len(AI_PREFIX) :]] = json_value(value)
    _scalars(props, found)
    op = _operation(attributes)
    if op:
        props["$ai_operation"] = op
    if span.start_ns is not None and span.end_ns is not None:
        props["$ai_latency"] = (span.end_ns - span.start_ns) / 1e9
    error_type = found.get("error.type")
    if span.is_error or error_type is not None:
        props["$ai_is_error"] = True
        props["$ai_error"] = span.error_message or str(error_type or "error")
    status = None
    if event_name in _CALL_EVENTS:
        status = http_status(attributes, props, span.events)
        if status is not None:
            props["$ai_http_status"] = status
        if "$ai_base_url" not in props:
            base_url = server_base_url(attributes)
            if base_url is not None:
                props["$ai_base_url"] = base_url
    props.update(LIB_PROPERTIES)
    # privacy mode: only the tool definitions of the content are kept, so only they are read
    content = content_properties(attributes, span.events, tools_only=options.privacy_mode)
    if event_name == "$ai_embedding" and "$ai_input" in content:
        content["$ai_input"] = embedding_input(content["$ai_input"])
    if event_name in ("$ai_span", "$ai_trace"):
        if "$ai_input" in content:
            content["$ai_input_state"] = content.pop("$ai_input")
        if "$ai_output_choices" in content:
            content["$ai_output_state"] = content.pop("$ai_output_choices")
        content.update(tool_state(attributes))
    props.update(content)
    in_provider_shape(props)
    props.update(overrides)  # PostHog-native attributes win
    if options.privacy_mode:
        for key in _PRIVATE_PROPERTIES:
            props.pop(key, None)
        if "$ai_error" in props:  # messages often echo the prompt: class name and status only
            props["$ai_error"] = error_summary(attributes, span.events, status)
    limit = options.max_content_bytes
    if (content or overrides) and _text_size(attributes, span.events, limit) * _SIZE_FACTOR > limit:
        _cap_content(props, limit)
    return props


def _text_size(attributes: Mapping[str, Any], events: Sequence[Any], limit: int) -> int:
    """Characters of text content may come from (structured event values count as over the
    cap, so they are measured exactly)."""
    size = sum(map(len, [value for value in attributes.values() if type(value) is str]))
    for event in events:
        for value in (event.attributes or {}).values():
            kind = type(value)
            if kind is str:
                size += len(value)
            elif kind is not int and kind is not float and kind is not bool:
                size += limit
    return size


def _scalars(props: dict[str, Any], found: Mapping[str, Any]) -> None:
    """Model, provider, counts, parameters and the rest from their found sources: one pass,
    each target handled by its kind (:data:`_KINDS`)."""
    parameters: dict[str, Any] | None = None
    reasons = None
    for target, value in found.items():
        kind = _KINDS.get(target)
        if kind is _DIRECT:
            props[target] = value
        elif kind is _PARAMETER:
            name = target[6:]
            if type(value) is tuple:
                value = list(value)
            if parameters is None:
                parameters = props["$ai_model_parameters"] = {}
            parameters[name] = value
            promoted = _PROMOTED_PARAMETERS.get(name)
            if promoted is not None:
                props[promoted] = value
        elif kind is _COUNT:
            count = value if type(value) is int else number(value)
            if count is not None and (count or target in _COUNTS):
                props[target] = count
        elif target == "$ai_provider":
            props[target] = str(value).lower()
        elif target == "$ai_stop_reason":
            reasons = value
    reason = reasons[0] if isinstance(reasons, tuple | list) and reasons else reasons
    if isinstance(reason, str) and reason:
        props["$ai_stop_reason"] = stop_reason(reason, props.get("$ai_provider"))


def _cap_content(props: dict[str, Any], limit: int) -> None:
    truncated = False
    for key in CONTENT_PROPERTIES:
        if key in props:
            props[key], cut = _cap(props[key], limit)
            truncated = truncated or cut
    if truncated:
        props["$ai_content_truncated"] = True
