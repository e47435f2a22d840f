"""GenAI spans to PostHog LLM analytics events: pure functions over a span's name, attributes
and span events.

Used by :class:`~posthog_otel.spans.mapping.SpanMapper`, so the span processor, the exporter
and the OTLP bridge all turn the same span into the same event.

Usage::

    if is_ai_span(attributes):
        name, props = ai_event(AiSpan(...), AiOptions(privacy_mode=False))
        # or separately: ai_event_name(attributes, has_ai_parent=...), ai_properties(...)

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..genai_rules import GENAI_PREFIXES, is_genai_content
from .genai_content import content_and_source_size, embedding_input, json_text, tool_state
from .genai_provider import (
    LIB_PROPERTIES,
    error_summary,
    http_status,
    in_provider_shape,
    server_base_url,
)
from .genai_scalars import (
    AI_EVENT_ATTRIBUTE,
    AI_PARENT_ATTRIBUTE,
    SCALAR_PROPERTIES,
    scalar_properties,
)

__all__ = [
    "AI_PARENT_ATTRIBUTE",
    "CONTENT_PROPERTIES",
    "GENAI_PREFIXES",
    "TRUNCATED_MARKER",
    "AiOptions",
    "AiSpan",
    "ai_event",
    "ai_event_name",
    "ai_properties",
    "is_ai_span",
    "is_genai_content",
]

TRUNCATED_MARKER = "... [truncated by posthog-otel]"
CONTENT_PROPERTIES = (
    "$ai_input",
    "$ai_output_choices",
    "$ai_input_state",
    "$ai_output_state",
    "$ai_tools",
)
_PRIVATE_PROPERTIES = frozenset(CONTENT_PROPERTIES) - {"$ai_tools"}
# in privacy mode, the only posthog.ai.* overrides applied: known metadata (fail closed: an
# override under any other name may be content, so it is left out)
_PRIVATE_MODE_OVERRIDES = frozenset(
    {
        *SCALAR_PROPERTIES,
        "$ai_tools",
        "$ai_trace_id",
        "$ai_span_id",
        "$ai_parent_id",
        "$ai_generation_id",
        "$ai_span_name",
        "$ai_operation",
        "$ai_latency",
        "$ai_is_error",
        "$ai_error",
        "$ai_http_status",
        "$ai_lib",
        "$ai_lib_version",
    }
)
# the properties the mapping reads or removes after writing others: an event whose other
# properties (tags) hold one of them gets its $ai_* properties in a dict of their own
_READ_PROPERTIES = frozenset(
    {
        *CONTENT_PROPERTIES,
        *SCALAR_PROPERTIES,
        "$ai_is_error",
        "$ai_error",
        "$ai_base_url",
    }
)

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


def ai_event(
    span: AiSpan,
    options: AiOptions,
    ids: tuple[str, str] | None = None,
    into: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The event name and ``$ai_*`` properties of one AI span (identity and tags are the
    caller's): :func:`ai_event_name` and :func:`ai_properties` in one. ``ids``: the span's
    trace and span ids in hex, when the caller has them formatted already. ``into``: the
    event's other properties; the ``$ai_*`` ones are added to it (and it is returned) unless
    it holds one the mapping reads, the same as adding them to it afterwards."""
    if into is not None and not _READ_PROPERTIES.isdisjoint(into):
        into = None
    return _event(span, None, options, ids, into)


def ai_event_name(attributes: Mapping[str, Any], has_ai_parent: bool) -> str:
    """``$ai_generation``, ``$ai_embedding``, ``$ai_trace`` or ``$ai_span`` (see the rules)."""
    return _event_name(attributes, _operation(attributes), has_ai_parent)


def _event_name(attributes: Mapping[str, Any], op: str, has_ai_parent: bool) -> str:
    explicit = attributes.get(AI_EVENT_ATTRIBUTE)
    if explicit:
        return str(explicit)
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
    text = value if isinstance(value, str) else json_text(value)
    if len(text) * 4 <= limit:
        return value, False
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return value, False
    cut = encoded[: max(limit - len(TRUNCATED_MARKER), 0)].decode("utf-8", "ignore")
    return cut + TRUNCATED_MARKER, True


def ai_properties(span: AiSpan, event_name: str, options: AiOptions) -> dict[str, Any]:
    """The ``$ai_*`` properties of one AI span's event (identity and tags are the caller's)."""
    return _event(span, event_name, options)[1]


def _event(
    span: AiSpan,
    event_name: str | None,
    options: AiOptions,
    ids: tuple[str, str] | None = None,
    into: dict[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The event's name (``event_name``, else from the span) and its ``$ai_*`` properties
    (written into ``into`` when given)."""
    attributes = span.attributes
    op = attributes.get("gen_ai.operation.name") or attributes.get("llm.request.type")
    op = str(op).lower() if op else ""  # as _operation, without the call
    if event_name is None:
        event_name = _event_name(attributes, op, span.parent_id is not None)
    if ids is None:
        ids = (format(span.trace_id, "032x"), format(span.span_id, "016x"))
    props: dict[str, Any] = {} if into is None else into
    props["$ai_trace_id"] = ids[0]
    span_id = ids[1]
    if event_name == "$ai_trace":
        props["$ai_span_id"] = span_id
    else:
        props["$ai_span_id"] = span_id
        if event_name == "$ai_generation":
            props["$ai_generation_id"] = span_id
        if span.parent_id:
            props["$ai_parent_id"] = span.parent_id
    props["$ai_span_name"] = span.name
    overrides = scalar_properties(props, attributes)
    if op:
        props["$ai_operation"] = op
    if span.start_ns is not None and span.end_ns is not None:
        props["$ai_latency"] = (span.end_ns - span.start_ns) / 1e9
    error_type = attributes.get("error.type")
    if span.is_error or error_type is not None:
        props["$ai_is_error"] = True
        props["$ai_error"] = span.error_message or str(error_type or "error")
    status = None
    if event_name in _CALL_EVENTS:
        if (
            "$ai_is_error" not in props
            and "http.response.status_code" not in attributes
            and "http.status_code" not in attributes
        ):
            status = 200  # what http_status says of a call that did not fail and records none
        else:
            status = http_status(attributes, props, span.events)
        if status is not None:
            props["$ai_http_status"] = status
        if "$ai_base_url" not in props and "server.address" in attributes:
            base_url = server_base_url(attributes)
            if base_url is not None:
                props["$ai_base_url"] = base_url
    props.update(LIB_PROPERTIES)
    # privacy mode: only the tool definitions of the content are kept, so only they are read
    content, source_size = content_and_source_size(
        attributes, span.events, tools_only=options.privacy_mode
    )
    if event_name == "$ai_embedding" and "$ai_input" in content:
        content["$ai_input"] = embedding_input(content["$ai_input"])
    if event_name in ("$ai_span", "$ai_trace"):
        if "$ai_input" in content:
            content["$ai_input_state"] = content.pop("$ai_input")
        if "$ai_output_choices" in content:
            content["$ai_output_state"] = content.pop("$ai_output_choices")
        state = tool_state(attributes)
        if state:
            content.update(state)
            source_size = None
    props.update(content)
    if props.get("$ai_provider") == "anthropic":
        in_provider_shape(props)
    if overrides:
        if options.privacy_mode:
            overrides = {k: v for k, v in overrides.items() if k in _PRIVATE_MODE_OVERRIDES}
        props.update(overrides)  # PostHog-native attributes win
    if options.privacy_mode:
        for key in _PRIVATE_PROPERTIES:
            props.pop(key, None)
        if "$ai_error" in props:  # messages often echo the prompt: class name and status only
            props["$ai_error"] = error_summary(attributes, span.events, status)
    limit = options.max_content_bytes
    if (
        (content or overrides)
        # content known to fit (its JSON is at most _SIZE_FACTOR bytes per source character)
        # is never cut, so it need not be measured; any other content is measured exactly:
        # reshaping may add fields, so its source's length bounds nothing
        and (overrides or source_size is None or source_size * _SIZE_FACTOR > limit)
    ):
        _cap_content(props, limit)
    return event_name, props


def _cap_content(props: dict[str, Any], limit: int) -> None:
    truncated = False
    for key in CONTENT_PROPERTIES:
        if key in props:
            props[key], cut = _cap(props[key], limit)
            truncated = truncated or cut
    if truncated:
        props["$ai_content_truncated"] = True
