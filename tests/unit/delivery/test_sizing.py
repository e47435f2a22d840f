"""The queue's size estimate counts JSON-like values as a plain walk of every node does."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from posthog_otel.delivery.sizing import approx_json_size


def _walked(value: Any) -> int:
    """The rule, node by node: strings their length + 3, dicts and lists 2 + one per entry,
    str keys their length + 3 (others 8), bytes their length + 3, anything else 8."""
    if isinstance(value, str | bytes | bytearray):
        return len(value) + 3
    if isinstance(value, dict):
        keys = sum(len(k) + 3 if isinstance(k, str) else 8 for k in value)
        return 2 + len(value) + keys + sum(_walked(v) for v in value.values())
    if isinstance(value, list | tuple):
        return 2 + len(value) + sum(_walked(v) for v in value)
    return 8


_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(max_size=20)
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.one_of(st.text(), st.integers()), inner, max_size=6),
    ),
    max_leaves=40,
)


@given(_VALUES)
def test_the_estimate_is_the_walk_of_every_node(value: Any) -> None:
    assert approx_json_size(value) == _walked(value)


def test_an_event_is_sized_without_raising_on_odd_keys() -> None:
    class Odd:
        def __len__(self) -> int:
            raise ValueError("no length")

    assert approx_json_size({Odd(): "x", "k": 1}) == 2 + 2 + 8 + 4 + 4 + 8
