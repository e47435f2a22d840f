"""Every public function of the ``posthog`` module and every public ``Client`` method accepts,
on posthog-otel, the parameters it accepts on posthog-python (inspected on both), except the
few listed in PENDING with the reason (README: "Differences from posthog-python")."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, get_args, get_origin, get_type_hints

import posthog
import pytest

import posthog_otel

# Offered by another part of posthog-otel, or not at all: name -> why.
PENDING: dict[str, str] = {
    "metrics": "posthog-python's metrics API: use OpenTelemetry metrics",
    "emails": "the transactional emails API is not offered",
    "queue": "posthog-python's internal event queue",
    "consumers": "posthog-python's internal sender threads",
    "log": "posthog-python's logger object (ours is logging.getLogger('posthog.otel'))",
    # posthog-python's older or lower-level flag calls (use the ones above with the [flags] extra)
    "get_feature_flag_evaluation_runtime": "feature flags",
    "get_feature_flag_keys_by_evaluation_runtime": "feature flags",
    "feature_flags": "feature flags",
    "get_feature_variants": "feature flags",
    "get_feature_payloads": "feature flags",
    "get_feature_flags_and_payloads": "feature flags",
    "get_flags_decision": "feature flags",
}


def _module_functions() -> list[str]:
    return sorted(
        name
        for name, value in vars(posthog).items()
        if not name.startswith(("_", "inner_")) and inspect.isfunction(value)
    )


def _client_methods() -> list[str]:
    return sorted(name for name in vars(posthog.Client) if not name.startswith("_"))


def _accepted(ours: Callable[..., Any]) -> tuple[list[inspect.Parameter], bool]:
    params = list(inspect.signature(ours).parameters.values())
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    return [p for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)], has_var_kw


def _unpacked_keys(fn: Callable[..., Any]) -> list[str]:
    """The keys of a ``**kwargs: Unpack[SomeTypedDict]`` parameter (public ones)."""
    hints = get_type_hints(fn, include_extras=True)
    kwargs = hints.get("kwargs")
    if kwargs is None:
        return []
    (typed_dict,) = get_args(kwargs) if get_origin(kwargs) is not None else (kwargs,)
    return [key for key in typed_dict.__annotations__ if not key.startswith("_")]


def assert_accepts(theirs: Callable[..., Any], ours: Callable[..., Any], where: str) -> None:
    ours_params, ours_var_kw = _accepted(ours)
    by_name = {p.name: p for p in ours_params}
    positional_ours = [
        p.name for p in ours_params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    problems = []
    position = 0
    for param in inspect.signature(theirs).parameters.values():
        if param.kind is param.VAR_KEYWORD:
            for key in _unpacked_keys(theirs):
                if key not in by_name and not ours_var_kw:
                    problems.append(f"keyword {key!r} (from **kwargs) not accepted")
            continue
        if param.kind is param.VAR_POSITIONAL:
            continue
        mine = by_name.get(param.name)
        if mine is None:
            problems.append(f"parameter {param.name!r} missing")
            continue
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            if position >= len(positional_ours) or positional_ours[position] != param.name:
                problems.append(f"parameter {param.name!r} not at position {position}")
            position += 1
        if mine.default is inspect.Parameter.empty and param.default is not inspect.Parameter.empty:
            problems.append(f"parameter {param.name!r} is required on ours, optional on theirs")
    assert not problems, f"{where}: " + "; ".join(problems)


@pytest.mark.parametrize("name", _module_functions())
def test_module_function_accepts_the_same_parameters(name: str) -> None:
    if name in PENDING:
        pytest.skip(f"pending: {PENDING[name]}")
    ours = getattr(posthog_otel, name, None)
    assert ours is not None, f"posthog_otel.{name} is missing"
    assert_accepts(getattr(posthog, name), ours, f"posthog_otel.{name}")


@pytest.mark.parametrize("name", _client_methods())
def test_client_method_accepts_the_same_parameters(name: str) -> None:
    if name in PENDING:
        pytest.skip(f"pending: {PENDING[name]}")
    theirs = inspect.getattr_static(posthog.Client, name)
    assert hasattr(posthog_otel.Client, name), f"Client.{name} is missing"
    if isinstance(theirs, property):
        return  # a readable attribute: present is what matters
    assert_accepts(
        getattr(posthog.Client, name), getattr(posthog_otel.Client, name), f"Client.{name}"
    )


def test_client_constructor_accepts_the_same_parameters() -> None:
    assert_accepts(posthog.Client.__init__, posthog_otel.Client.__init__, "Client()")


def test_the_check_catches_a_missing_or_moved_parameter() -> None:
    def theirs(a: int, b: int = 0, **kwargs: Any) -> None: ...

    def missing(a: int) -> None: ...

    def moved(b: int = 0, a: int = 0) -> None: ...

    with pytest.raises(AssertionError, match="'b' missing"):
        assert_accepts(theirs, missing, "missing")
    with pytest.raises(AssertionError, match="not at position"):
        assert_accepts(theirs, moved, "moved")
    assert_accepts(theirs, theirs, "same")


def test_every_pending_name_exists_in_posthog_python() -> None:
    names = set(_module_functions()) | set(_client_methods())
    assert set(PENDING) <= names, set(PENDING) - names
