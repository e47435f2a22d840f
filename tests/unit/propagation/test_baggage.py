"""The baggage codec: value typing, W3C encoding, limits, hostile input."""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import unquote_plus

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import posthog_otel as ph
from posthog_otel.propagation import baggage as bg

# W3C: key = token; value = *baggage-octet (what a strict receiver accepts).
W3C_MEMBER = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+=[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def ids(distinct_id: str | None, session_id: str | None, window_id: str | None) -> dict[str, str]:
    """Identity values by field name, as the codec takes them."""
    values = {"distinct_id": distinct_id, "session_id": session_id, "window_id": window_id}
    return {name: value for name, value in values.items() if value is not None}


def round_trip(
    tags: dict[str, Any], distinct_id: str | None = "user-1", session_id: str | None = None
) -> bg.Inbound:
    encoded = bg.encode(ids(distinct_id, session_id, None), tags)
    header = bg.merge_header(None, encoded)
    return bg.parse_header([header] if header else None)


def counter(name: str) -> int:
    return bg.stats()[name]


# -- values --------------------------------------------------------------------------------

TRICKY = {
    "spaces": "a b  c ",
    "leading": "  padded",
    "plus": "1+1=2",
    "percent": "100% %41 %zz %",
    "semicolon": "a;b;prop=1",
    "comma": "a,b,,c",
    "equals": "=k=v=",
    "unicode": "héllo ✓ 日本語 🚀",
    "quote": 'say "hi" \\ back',
    "number_string": "42",
    "float_string": "1.5",
    "bool_string": "true",
    "null_string": "null",
    "json_string": '{"a": 1}',
    "quoted": '"already quoted"',
    "nan_string": "NaN",
    "empty": "",
    "int": 42,
    "zero": 0,
    "negative": -7,
    "big": 2**80,
    "float": 3.25,
    "tiny": 1e-300,
    "true": True,
    "false": False,
    "null": None,
    "list": [1, "two, three", None, True, 2.5, []],
    "dict": {"nested": {"k": "v w;x"}, "n": 1.5, "e": {}},
}


def test_every_json_type_round_trips_with_its_type() -> None:
    inbound = round_trip(TRICKY)
    assert inbound.tags == TRICKY
    for key, value in TRICKY.items():
        assert type(inbound.tags[key]) is type(value), key


def test_members_are_valid_w3c_and_encode_space_plus_percent() -> None:
    encoded = bg.encode(ids("user 1+2%", None, None), TRICKY)
    for member in encoded.identity + encoded.tags:
        assert W3C_MEMBER.fullmatch(member), member
    assert "posthog.distinct_id=user%201%2B2%25" in encoded.identity
    assert "posthog.tag.spaces=a%20b%20%20c%20" in encoded.tags


def test_a_plain_value_from_another_language_reads_as_a_string() -> None:
    inbound = bg.parse_header("posthog.tag.plan=pro,posthog.tag.note=a+b,posthog.tag.x=%E2%9C%93")
    assert inbound.tags == {"plan": "pro", "note": "a+b", "x": "✓"}  # a literal + survives
    # text that is JSON takes its JSON type
    inbound = bg.parse_header("posthog.tag.n=12,posthog.tag.b=false,posthog.tag.f=1e999")
    assert inbound.tags == {"n": 12, "b": False, "f": "1e999"}  # no infinities


def test_keys_that_are_not_tokens_are_encoded_reversibly() -> None:
    tags = {"my key": 1, "a=b": 2, "c,d;e": 3, "ключ": 4, "100%": 5, "x+y": 6, "$current_url": 7}
    encoded = bg.encode(ids(None, None, None), tags)
    assert "posthog.tag.my%20key=1" in encoded.tags
    assert "posthog.tag.$current_url=7" in encoded.tags  # a token character stays
    assert round_trip(tags).tags == tags


def test_stock_python_reader_decodes_our_values_to_the_same_text() -> None:
    encoded = bg.encode(ids("a b+c", None, None), {"s": "x + y = 100%", "k e y": "v"})
    decoded = {}
    for member in encoded.identity + encoded.tags:
        key, value = member.split("=", 1)
        decoded[unquote_plus(key)] = unquote_plus(value)
    assert decoded == {
        "posthog.distinct_id": "a b+c",
        "posthog.tag.s": "x + y = 100%",
        "posthog.tag.k e y": "v",
    }


def test_unserialisable_values_go_as_their_json_safe_form() -> None:
    inbound = round_trip({"nan": math.nan, "set": {1}, "obj": object})
    assert inbound.tags["nan"] is None
    assert inbound.tags["set"] == [1]
    assert inbound.tags["obj"] is None  # as posthog-python sends what it cannot convert


def test_members_with_properties_ows_and_invalid_chars() -> None:
    inbound = bg.parse_header(
        " posthog.distinct_id = u1 ;ttl=3 , posthog.tag.bad=a b, posthog.tag.ok=1;p,"
        "posthog.tag.=x,posthog.tag.na\u00efve=1,posthog.session_id"
    )
    assert inbound.distinct_id == "u1"
    assert inbound.tags == {"ok": 1}


def test_identity_values_are_sanitised() -> None:
    assert bg.sanitize_header_value("  user\x00-1\r\n ") == "user-1"
    assert bg.sanitize_header_value("\t \x7f") is None
    assert bg.sanitize_header_value("") is None
    assert bg.sanitize_header_value(b"caf\xc3\xa9") == "café"
    assert bg.sanitize_header_value("x" * 5000) == "x" * 1000
    assert bg.sanitize_header_value(None) is None
    inbound = bg.parse_header("posthog.distinct_id=%0Aevil%0D%0A,posthog.session_id=%20%20")
    assert inbound.distinct_id == "evil"
    assert inbound.session_id is None


def test_encoding_is_cached_per_scope_state() -> None:
    with ph.new_context() as scope:
        ph.tag("a", 1)
        first = bg.encoded_for(scope.resolve())
        assert bg.encoded_for(scope.resolve()) is first
        ph.tag("b", 2)
        second = bg.encoded_for(scope.resolve())
        assert second is not first
        assert len(second.tags) == 2


# -- limits --------------------------------------------------------------------------------


def test_inject_keeps_to_the_limits_dropping_largest_tags_never_identity() -> None:
    before = counter("outbound_dropped_tags")
    tags = {f"t{i:03}": "v" * (10 + i % 50) for i in range(400)}
    tags["huge"] = "h" * 5000  # a member over 4096 bytes can never be sent
    encoded = bg.encode(ids("user-1", "session-1", "window-1"), tags)
    header = bg.merge_header(None, encoded)
    assert header is not None
    members = header.split(",")
    assert len(members) <= bg.MAX_MEMBERS
    assert len(header) <= bg.MAX_HEADER_BYTES
    assert members[:3] == [
        "posthog.distinct_id=user-1",
        "posthog.session_id=session-1",
        "posthog.window_id=window-1",
    ]
    kept = {m.split("=", 1)[0][len(bg.TAG_PREFIX) :] for m in members[3:]}
    dropped = set(tags) - kept
    assert "huge" in dropped
    # the largest went first: every kept tag is no larger than any dropped one (ties aside)
    assert max(len(tags[k]) for k in kept) <= min(len(tags[k]) for k in dropped - {"huge"})
    assert counter("outbound_dropped_tags") - before == len(dropped)


def test_drop_order_prefers_the_most_recently_set_among_equals() -> None:
    tags = {f"k{i:03}": "x" for i in range(200)}
    header = bg.merge_header(None, bg.encode(ids(None, None, None), tags))
    assert header is not None
    keys = [m.split("=", 1)[0] for m in header.split(",")]
    assert keys == [f"posthog.tag.k{i:03}" for i in range(180)]


def test_merge_fits_in_the_room_other_members_leave() -> None:
    others = ",".join(f"other{i}={'o' * 40}" for i in range(150))
    tags = {f"t{i}": "v" * 30 for i in range(60)}
    header = bg.merge_header(others + ",posthog.tag.stale=1", bg.encode(ids("u", None, None), tags))
    assert header is not None
    members = header.split(",")
    assert members[:150] == others.split(",")  # untouched, in order
    assert "posthog.tag.stale=1" not in members
    assert "posthog.distinct_id=u" in members
    assert len(members) <= bg.MAX_MEMBERS
    assert len(header) <= bg.MAX_HEADER_BYTES


def test_merge_without_room_sends_only_the_others() -> None:
    full = ",".join(f"o{i}=1" for i in range(180))
    assert bg.merge_header(full, bg.encode(ids("u", None, None), {"a": 1})) == full


def test_extract_keeps_at_most_64_tags_and_short_values() -> None:
    before = counter("inbound_over_limit")
    header = ",".join(f"posthog.tag.t{i}={i}" for i in range(100))
    inbound = bg.parse_header(header)
    assert inbound.tags == {f"t{i}": i for i in range(64)}
    assert counter("inbound_over_limit") - before == 36
    inbound = bg.parse_header(f"posthog.tag.long={'x' * 1001},posthog.tag.ok={'y' * 1000}")
    assert inbound.tags == {"ok": "y" * 1000}


def test_extract_reads_only_the_first_8192_bytes_and_180_members() -> None:
    filler = ",".join(f"f{i}=1" for i in range(300))
    inbound = bg.parse_header("posthog.distinct_id=early," + filler + ",posthog.tag.late=1")
    assert inbound.distinct_id == "early"
    assert inbound.tags == {}
    big = "posthog.distinct_id=early," + "x=" + "y" * 9000 + ",posthog.session_id=late"
    inbound = bg.parse_header(big)
    assert inbound.distinct_id == "early"  # not the whole header lost
    assert inbound.session_id is None
    oversize = "posthog.tag.big=" + "z" * 4100 + ",posthog.tag.small=1"
    assert bg.parse_header(oversize).tags == {"small": 1}


# -- hostile input (property based) ----------------------------------------------------------

header_text = st.one_of(
    st.text(max_size=3000),
    st.text(alphabet=st.sampled_from("posthog.tag.=,;%+ \t\x00\x7fé2Fzab"), max_size=3000),
    st.binary(max_size=3000),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(header_text, st.lists(header_text, max_size=5)))
def test_parse_never_raises_and_holds_the_limits(values: Any) -> None:
    inbound = bg.parse_header(values)
    assert len(inbound.tags) <= bg.MAX_INBOUND_TAGS
    for key, value in inbound.tags.items():
        assert key and not CONTROL.search(key)
        if isinstance(value, str):
            assert len(value) <= bg.MAX_VALUE_CHARS and not CONTROL.search(value)
    for identity in (inbound.distinct_id, inbound.session_id, inbound.ids.get("window_id")):
        assert identity is None or (0 < len(identity) <= 1000 and not CONTROL.search(identity))


def test_huge_headers_and_thousands_of_members_are_cheap_and_bounded() -> None:
    import time

    cases = [
        "posthog.tag.a=1," * 200_000,
        "x" * 5_000_000,
        ",".join(f"posthog.tag.k{i}={i}" for i in range(5000)),
        "%" * 100_000,
    ]
    started = time.perf_counter()
    for case in cases:
        inbound = bg.parse_header(case)
        assert len(inbound.tags) <= bg.MAX_INBOUND_TAGS
    assert time.perf_counter() - started < 1.0


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
clean_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(clean_text, json_values, max_size=10))
def test_any_json_tags_round_trip(tags: dict[str, Any]) -> None:
    assume(all(len(bg.encode_tag_value(v)) < 3000 for v in tags.values()))
    assume(all(not isinstance(v, str) or v.isprintable() for v in tags.values()))
    assert round_trip(tags).tags == tags


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(clean_text, st.text(max_size=20) | st.integers(), min_size=1, max_size=20),
    st.lists(st.text(max_size=40).filter(lambda s: "posthog" not in s), max_size=20),
)
def test_valid_members_are_kept_among_garbage(tags: dict[str, Any], garbage: list[str]) -> None:
    assume(all(not isinstance(v, str) or v.isprintable() for v in tags.values()))
    encoded = bg.encode(ids("user-1", None, None), tags)
    members = encoded.identity + encoded.tags
    mixed: list[str] = []
    for index, member in enumerate(members):
        if index < len(garbage):
            mixed.append(garbage[index])
        mixed.append(member)
    header = ",".join(mixed)
    assume(len(header) <= bg.MAX_HEADER_BYTES and header.count(",") < bg.MAX_MEMBERS)
    inbound = bg.parse_header(header)
    assert inbound.distinct_id == "user-1"
    assert inbound.tags == tags


@pytest.mark.parametrize(
    ("raw", "tags"),
    [
        ("", {}),
        (",,,", {}),
        ("posthog.distinct_id", {}),
        ("posthog.distinct_id=", {}),
        ("=x", {}),
        ("posthog.tag.%zz=1", {"%zz": 1}),  # an invalid escape stays literal
        ("posthog.tag.k=%ff%fe", {"k": "\ufffd\ufffd"}),  # invalid UTF-8: replacement chars
    ],
)
def test_degenerate_headers(raw: str, tags: dict[str, Any]) -> None:
    inbound = bg.parse_header(raw)
    assert inbound.distinct_id is None
    assert inbound.tags == tags
