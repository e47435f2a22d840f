"""The scalar ``$ai_*`` properties: the best source present wins whatever the attributes'
order, a ``None`` source counts as absent (decoded OTLP can hold them), and a plan kept for
one sequence of attribute names gives the same result as working it out afresh."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from posthog_otel.spans import genai_scalars
from posthog_otel.spans.genai_scalars import scalar_properties


def _scalars(attributes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    props: dict[str, Any] = {}
    overrides = scalar_properties(props, attributes)
    return props, overrides


STREAM = {"gen_ai.request.stream": "best", "gen_ai.is_streaming": "second", "llm.is_streaming": 3}


@pytest.mark.parametrize("order", list(itertools.permutations(STREAM)))
def test_best_ranked_source_wins_in_any_order(order: tuple[str, ...]) -> None:
    props, _ = _scalars({name: STREAM[name] for name in order})
    assert props["$ai_stream"] == "best"
    assert props["$ai_model_parameters"] == {"stream": "best"}


def test_next_source_when_the_best_is_missing() -> None:
    props, _ = _scalars({"llm.is_streaming": True, "gen_ai.is_streaming": False})
    assert props["$ai_stream"] is False


def test_none_sources_count_as_absent() -> None:
    props, overrides = _scalars(
        {
            "gen_ai.usage.input_tokens": None,
            "gen_ai.request.model": None,
            "gen_ai.provider.name": "OpenAI",
            "gen_ai.usage.prompt_tokens": 7,
            "gen_ai.response.model": "gpt-4o",
            "gen_ai.request.temperature": None,
            "gen_ai.response.finish_reasons": ("tool_call",),
            "posthog.ai.custom": None,
        }
    )
    # in the order their first non-None source comes
    assert list(props.items()) == [
        ("$ai_provider", "openai"),
        ("$ai_input_tokens", 7),
        ("$ai_model", "gpt-4o"),
        ("$ai_stop_reason", "tool_calls"),
    ]
    assert overrides == {"$ai_custom": None}


def test_none_in_a_lower_ranked_source_leaves_the_best_one() -> None:
    props, _ = _scalars({"gen_ai.response.model": None, "gen_ai.request.model": "gpt-4o-mini"})
    assert props == {"$ai_model": "gpt-4o-mini"}


def test_kept_plan_and_fresh_plan_agree() -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "Anthropic",
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.reasoning_tokens": "12",
        "gen_ai.usage.output_tokens": 0,
        "gen_ai.request.stop_sequences": ("END", "STOP"),
        "gen_ai.request.max_tokens": 100,
        "posthog.ai.input": '["a"]',
        "posthog.ai.event": "$ai_generation",
    }
    genai_scalars._PLANS.clear()
    fresh = _scalars(attributes)
    assert tuple(attributes) in genai_scalars._PLANS
    assert _scalars(attributes) == fresh
    props, overrides = fresh
    assert props == {
        "$ai_provider": "anthropic",
        "$ai_reasoning_tokens": 12,
        "$ai_output_tokens": 0,
        "$ai_model_parameters": {"stop": ["END", "STOP"], "max_tokens": 100},
        "$ai_max_tokens": 100,
    }
    assert overrides == {"$ai_input": ["a"]}


def test_plans_kept_are_bounded() -> None:
    genai_scalars._PLANS.clear()
    for index in range(genai_scalars._MAX_PLANS + 10):
        _scalars({f"custom.{index}": 1, "gen_ai.request.model": "m"})
    assert len(genai_scalars._PLANS) <= genai_scalars._MAX_PLANS
    many = {f"custom.{index}": index for index in range(genai_scalars._MAX_PLANNED_NAMES + 1)}
    props, _ = _scalars({**many, "gen_ai.request.model": "m"})
    assert props == {"$ai_model": "m"}
    assert tuple({**many, "gen_ai.request.model": "m"}) not in genai_scalars._PLANS


def test_plans_kept_are_bounded_in_the_characters_of_their_names() -> None:
    """Attribute names come from the sender (the bridge decodes any length): spans with long
    names are still mapped, but the kept plans never pin more than a bounded amount of text."""
    genai_scalars._PLANS.clear()
    long_names = 64
    for index in range(genai_scalars._MAX_PLANS + 10):
        attributes = {f"{index}.{n}." + "k" * 10_000: n for n in range(long_names)}
        props, _ = _scalars({**attributes, "gen_ai.request.model": f"m{index}"})
        assert props == {"$ai_model": f"m{index}"}
    kept = sum(len(name) for names in genai_scalars._PLANS for name in names)
    assert kept <= genai_scalars._MAX_PLANS * genai_scalars._MAX_PLANNED_CHARS
    # names of an ordinary length are still kept
    ordinary = {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 3}
    _scalars(ordinary)
    assert tuple(ordinary) in genai_scalars._PLANS
