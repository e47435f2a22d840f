"""Which OpenTelemetry attributes, span events and log records hold GenAI content.

One rule for every layer that must keep prompts, completions, tool definitions, arguments and
results out of what it sends: plain events (span and log-record events), the traces export and
the logs export in privacy mode.

* An attribute under ``gen_ai.``, ``llm.`` or ``traceloop.entity.`` is content unless it is a
  known metadata name (model, provider, operation, usage, request parameters, ids); a name
  added to the conventions later is content (fail closed).
* A span event or log record named ``gen_ai.*`` (``gen_ai.user.message``, ``gen_ai.choice``...)
  is content as a whole: its body and its plain attributes (``content``, ``tool_calls``...).

Usage::

    from posthog_otel.genai_rules import is_genai_content, is_genai_event, private_attributes

    is_genai_content("gen_ai.input.messages")     # True
    is_genai_content("gen_ai.request.model")      # False
    is_genai_event("gen_ai.user.message")         # True
    private_attributes(span.attributes)           # None when nothing is content, else a copy
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "GENAI_PREFIXES",
    "is_genai_content",
    "is_genai_event",
    "private_attributes",
]

GENAI_PREFIXES = ("gen_ai.", "llm.", "traceloop.entity.")
_METADATA = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.response.id",
        "gen_ai.response.finish_reasons",
        "gen_ai.request.temperature",
        "gen_ai.request.max_tokens",
        "gen_ai.request.top_p",
        "gen_ai.request.top_k",
        "gen_ai.request.frequency_penalty",
        "gen_ai.request.presence_penalty",
        "gen_ai.request.seed",
        "gen_ai.request.choice.count",
        "gen_ai.request.stream",
        "gen_ai.request.encoding_formats",
        "gen_ai.output.type",
        "gen_ai.conversation.id",
        "gen_ai.agent.id",
        "gen_ai.agent.name",
        "gen_ai.tool.name",
        "gen_ai.tool.type",
        "gen_ai.tool.call.id",
        "gen_ai.openai.api_base",
        "gen_ai.openai.request.service_tier",
        "gen_ai.openai.response.service_tier",
        "llm.request.type",
        "llm.is_streaming",
        "llm.request.temperature",
        "llm.request.max_tokens",
        "llm.top_p",
        "llm.frequency_penalty",
        "llm.presence_penalty",
    }
)
_METADATA_PREFIXES = ("gen_ai.usage.", "llm.usage.")


def is_genai_content(key: str) -> bool:
    """May this ``gen_ai.*``/``llm.*``/``traceloop.entity.*`` attribute hold prompts,
    completions, tool definitions, arguments or results? True for every such name but the
    known metadata ones, so a name added to the conventions later is treated as content."""
    if not key.startswith(GENAI_PREFIXES):
        return False
    return key not in _METADATA and not key.startswith(_METADATA_PREFIXES)


def is_genai_event(name: Any) -> bool:
    """Is a span event or log record of this name GenAI content as a whole?"""
    return bool(name) and str(name).startswith(GENAI_PREFIXES)


def private_attributes(
    attributes: Mapping[str, Any] | None, *, event_name: Any = None
) -> dict[str, Any] | None:
    """``attributes`` without GenAI content, or None when there is nothing to leave out.

    For a GenAI event (``event_name`` under the GenAI prefixes) only its metadata attributes
    remain: every other attribute of such an event may hold its content."""
    if not attributes:
        return None
    if is_genai_event(event_name):
        kept = {
            key: value
            for key, value in attributes.items()
            if key.startswith(GENAI_PREFIXES) and not is_genai_content(key)
        }
    else:
        kept = {key: value for key, value in attributes.items() if not is_genai_content(key)}
    return None if len(kept) == len(attributes) else kept
