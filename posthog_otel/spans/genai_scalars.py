"""The scalar ``$ai_*`` properties of a GenAI span (model, provider, token counts, model
parameters, stop reason, ids...) and its ``posthog.ai.*`` overrides, for :mod:`.genai`.

Usage::

    overrides = scalar_properties(props, attributes)  # writes the scalars into props

Each property has source attributes, first found wins (``gen_ai.request.model``, then
``gen_ai.response.model``); a source holding ``None`` counts as absent. Properties are written
in the order their first source comes among the attributes, ``$ai_stop_reason`` last.

Instrumentations record the same attribute names, in the same order, on every call of a kind,
so what a sequence of names yields is worked out once (:class:`_Plan`: each property's sources
present, best first, and how its value is converted; the ``posthog.ai.*`` overrides) and kept
for the next span with the same names (at most 256 sequences are kept, each of at most 128
names and 8192 characters: names come from the sender). A span whose sources
include a ``None`` value (decoded OTLP can have them) is planned again without its ``None``
attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .genai_content import json_value, number
from .genai_provider import stop_reason

__all__ = [
    "AI_EVENT_ATTRIBUTE",
    "AI_PARENT_ATTRIBUTE",
    "AI_PREFIX",
    "SCALAR_PROPERTIES",
    "scalar_properties",
]

AI_PREFIX = "posthog.ai."
AI_EVENT_ATTRIBUTE = "posthog.ai.event"
AI_PARENT_ATTRIBUTE = "posthog.ai.parent_id"
"""The span id (16 hex digits) of the nearest AI ancestor, stamped by the span processor."""
_NOT_OVERRIDES = (AI_EVENT_ATTRIBUTE, AI_PARENT_ATTRIBUTE)

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
# how a target's value becomes its property
_DIRECT, _COUNT, _OPTIONAL_COUNT, _PARAMETER, _PROVIDER, _REASONS = range(6)
_PROMOTED_PARAMETERS = {
    "temperature": "$ai_temperature",
    "max_tokens": "$ai_max_tokens",
    "stream": "$ai_stream",
}


def _kind(target: str) -> int:
    if target.startswith("param:"):
        return _PARAMETER
    if target in ("$ai_input_tokens", "$ai_output_tokens"):
        return _COUNT  # sent even when 0
    if target.endswith("_tokens"):
        return _OPTIONAL_COUNT  # cache and reasoning counts: only when non-zero
    if target == "$ai_provider":
        return _PROVIDER
    if target == "$ai_stop_reason":
        return _REASONS
    return _DIRECT


def _extra(target: str) -> tuple[str, str | None] | None:
    """A model parameter's name and promoted property (``$ai_temperature``...)."""
    if not target.startswith("param:"):
        return None
    name = target[len("param:") :]
    return name, _PROMOTED_PARAMETERS.get(name)


_KINDS = {target: _kind(target) for target, _ in _SOURCES}
_EXTRAS = {target: _extra(target) for target, _ in _SOURCES}
SCALAR_PROPERTIES = (  # every property scalar_properties may write
    *(target for target, _ in _SOURCES if not target.startswith("param:")),
    "$ai_model_parameters",
    *_PROMOTED_PARAMETERS.values(),
)


class _Plan(NamedTuple):
    """What a span with one sequence of attribute names yields."""

    # (target, kind, best source, other sources present (by rank), parameter name/promoted),
    # in the order of each target's first source among the attributes
    sources: tuple[tuple[str, int, str, tuple[str, ...], Any], ...]
    overrides: tuple[tuple[str, str], ...]  # (posthog.ai.<name> attribute, $ai_<name>)


_PLANS: dict[tuple[str, ...], _Plan] = {}
_MAX_PLANS = 256  # distinct attribute-name sequences kept (hostile variety: plans rebuilt)
_MAX_PLANNED_NAMES = 128  # spans with more attributes are planned but not kept
_MAX_PLANNED_CHARS = 8192  # nor spans whose names are longer together (the plans keep them)


def _make_plan(names: tuple[str, ...]) -> _Plan:
    present: dict[str, list[tuple[int, str]]] = {}  # target -> (rank, name), first seen first
    overrides: list[tuple[str, str]] = []
    for name in names:
        spec = _BY_ATTRIBUTE.get(name)
        if spec is not None:
            target, rank = spec
            present.setdefault(target, []).append((rank, name))
        elif name.startswith(AI_PREFIX) and name not in _NOT_OVERRIDES:
            overrides.append((name, "$ai_" + name[len(AI_PREFIX) :]))
    sources = []
    for target, found in present.items():
        ranked = [name for _, name in sorted(found)]
        sources.append((target, _KINDS[target], ranked[0], tuple(ranked[1:]), _EXTRAS[target]))
    return _Plan(tuple(sources), tuple(overrides))


def scalar_properties(props: dict[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Write the scalar properties of a span with these attributes into ``props`` (which holds
    none of them yet); returns its ``posthog.ai.*`` overrides (``$ai_<name>``: value, JSON
    text decoded), for the caller to apply last."""
    names = tuple(attributes)
    plan = _PLANS.get(names)
    if plan is None:
        plan = _make_plan(names)
        if len(names) <= _MAX_PLANNED_NAMES and sum(map(len, names)) <= _MAX_PLANNED_CHARS:
            if len(_PLANS) >= _MAX_PLANS:
                _PLANS.clear()
            _PLANS[names] = plan
    sources = plan.sources
    while True:
        parameters: dict[str, Any] | None = None
        reasons = None
        for target, kind, name, others, extra in sources:
            value = attributes[name]
            if value is None or (others and None in map(attributes.__getitem__, others)):
                break
            if kind == _DIRECT:
                props[target] = value
            elif kind <= _OPTIONAL_COUNT:
                count = value if type(value) is int else number(value)
                if count is not None and (count or kind == _COUNT):
                    props[target] = count
            elif kind == _PARAMETER:
                if type(value) is tuple:
                    value = list(value)
                if parameters is None:
                    parameters = props["$ai_model_parameters"] = {}
                parameters[extra[0]] = value
                if extra[1] is not None:
                    props[extra[1]] = value
            elif kind == _PROVIDER:
                props[target] = str(value).lower()
            else:
                reasons = value
        else:
            break
        # a source is None: it counts as absent, so start again as if it were not there
        for key in SCALAR_PROPERTIES:
            props.pop(key, None)
        present = tuple(key for key, value in attributes.items() if value is not None)
        sources = _make_plan(present).sources
    reason = reasons[0] if isinstance(reasons, tuple | list) and reasons else reasons
    if isinstance(reason, str) and reason:
        props["$ai_stop_reason"] = stop_reason(reason, props.get("$ai_provider"))
    if plan.overrides:
        return {prop: json_value(attributes[name]) for name, prop in plan.overrides}
    return {}
