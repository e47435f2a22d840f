"""capture(), set(), set_once(), group_identify(), alias(): the same calls as posthog-python
put the same events on the wire (tests/parity/harness.py normalises uuids, times and $lib)."""

from __future__ import annotations

import dataclasses
import decimal
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from .harness import Side, assert_same

FIXED_UUID = "0190b4a4-93f6-7d0e-8b3c-3e0d5f6a7b8c"
UTC_TIME = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=timezone.utc)
OFFSET_TIME = datetime(2024, 5, 1, 14, 30, 45, tzinfo=timezone(timedelta(hours=2)))


@dataclasses.dataclass
class Order:
    sku: str
    quantity: int


# -- capture ------------------------------------------------------------------------------


def test_plain_capture() -> None:
    assert_same(lambda s: s.client.capture("ev", distinct_id="u1", properties={"a": 1}))


def test_capture_without_properties() -> None:
    assert_same(lambda s: s.client.capture("ev", distinct_id="u1"))


def test_capture_of_an_anonymous_event_is_personless() -> None:
    assert_same(lambda s: s.client.capture("anon"))


def test_an_explicit_process_person_profile_is_kept() -> None:
    assert_same(lambda s: s.client.capture("anon", properties={"$process_person_profile": True}))


@pytest.mark.parametrize("distinct_id", [42, 4.5, uuid.UUID(FIXED_UUID), "", True])
def test_distinct_ids_of_other_types(distinct_id: Any) -> None:
    assert_same(lambda s: s.client.capture("ev", distinct_id=distinct_id))


def test_capture_with_groups() -> None:
    assert_same(
        lambda s: s.client.capture("ev", distinct_id="u1", groups={"company": "c1", "team": "t9"})
    )


@pytest.mark.parametrize("disable_geoip", [True, False, None])
def test_capture_disable_geoip(disable_geoip: bool | None) -> None:
    assert_same(lambda s: s.client.capture("ev", distinct_id="u", disable_geoip=disable_geoip))


@pytest.mark.parametrize("client_geoip", [True, False])
def test_client_disable_geoip(client_geoip: bool) -> None:
    assert_same(lambda s: s.client.capture("ev", distinct_id="u"), disable_geoip=client_geoip)


@pytest.mark.parametrize("value", [FIXED_UUID, uuid.UUID(FIXED_UUID)])
def test_capture_with_a_uuid(value: Any) -> None:
    assert_same(lambda s: s.client.capture("ev", distinct_id="u", uuid=value), keep=("uuid",))


def test_an_invalid_uuid_is_replaced() -> None:
    _, ours = assert_same(lambda s: s.client.capture("ev", distinct_id="u", uuid="nope"))
    assert ours.events[0]["uuid"] != "nope"
    assert ours.result == ours.events[0]["uuid"]


def test_the_returned_uuid_is_the_one_sent() -> None:
    theirs, ours = assert_same(lambda s: s.client.capture("ev", distinct_id="u"))
    assert theirs.result == theirs.events[0]["uuid"]
    assert ours.result == ours.events[0]["uuid"]


@pytest.mark.parametrize(
    "timestamp",
    [
        UTC_TIME,
        OFFSET_TIME,
        datetime(2020, 1, 2, 3, 4, 5),  # naive and not "now": read as UTC
        "2024-05-01T12:30:45Z",
        "2024-05-01T12:30:45.5+05:30",
        "2024-05-01T12:30:45+0530",
        "2024-05-01T12:30:45",
        "2024-05-01",  # a date only: invalid, the current time is used
        "yesterday",
    ],
    ids=repr,
)
def test_capture_timestamps(timestamp: Any) -> None:
    keep = ("timestamp",) if timestamp not in ("2024-05-01", "yesterday") else ()
    assert_same(lambda s: s.client.capture("ev", distinct_id="u", timestamp=timestamp), keep=keep)


def test_a_naive_datetime_of_now_is_local_time() -> None:
    def scenario(side: Side) -> Any:
        return side.client.capture("ev", distinct_id="u", timestamp=datetime.now())

    theirs, ours = assert_same(scenario)
    sent = [datetime.fromisoformat(o.events[0]["timestamp"]) for o in (theirs, ours)]
    assert abs((sent[0] - sent[1]).total_seconds()) < 5


def test_property_values_of_every_supported_type() -> None:
    properties = {
        "text": "é ✓",
        "int": 7,
        "float": 1.5,
        "nan": float("nan"),
        "inf": float("inf"),
        "bool": False,
        "none": None,
        "decimal": decimal.Decimal("12.50"),
        "uuid": uuid.UUID(FIXED_UUID),
        "aware": OFFSET_TIME,
        "naive": datetime(2024, 1, 1, 9, 0),
        "date": date(2024, 2, 29),
        "set": {"only"},
        "tuple": (1, "two"),
        "nested": {"list": [1, {"deep": OFFSET_TIME}]},
        "dataclass": Order("sku-1", 2),
        "object": object(),
        "bytes": b"raw",
    }
    assert_same(lambda s: s.client.capture("typed", distinct_id="u", properties=properties))


def test_library_properties_win_over_event_properties() -> None:
    properties = {"$lib": "mine", "$os": "Plan9", "$python_version": "0", "$is_server": False}
    assert_same(lambda s: s.client.capture("ev", distinct_id="u", properties=properties))


def test_super_properties_override_event_properties() -> None:
    assert_same(
        lambda s: s.client.capture(
            "ev", distinct_id="u", properties={"plan": "free", "a": 1, "$is_server": False}
        ),
        super_properties={"plan": "pro", "$is_server": False, "$os": "mine"},
    )


def test_send_feature_flags_false_is_accepted() -> None:
    assert_same(lambda s: s.client.capture("ev", distinct_id="u", send_feature_flags=False))


def test_release_id_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTHOG_RELEASE_ID", " rel-42 ")
    assert_same(lambda s: s.client.capture("ev", distinct_id="u"))


def test_historical_migration_is_sent_with_the_batch() -> None:
    theirs, ours = assert_same(
        lambda s: s.client.capture("ev", distinct_id="u"), historical_migration=True
    )
    assert theirs.bodies[0]["historical_migration"] is True
    assert ours.bodies[0].get("historical_migration") is True


# -- contexts -----------------------------------------------------------------------------


def test_capture_in_a_context() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.identify_context("u2")
            side.module.set_context_session("s1")
            side.module.tag("t", 2)
            return side.client.capture("ev2")

    assert_same(scenario)


def test_event_properties_win_over_tags_and_explicit_distinct_id_over_context() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.identify_context("ctx-user")
            side.module.tag("plan", "free")
            side.module.tag("region", "eu")
            return side.client.capture(
                "ev", distinct_id="explicit", properties={"plan": "pro", "$session_id": "mine"}
            )

    assert_same(scenario)


def test_nested_contexts_inherit_and_fresh_ones_do_not() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.identify_context("outer")
            side.module.set_context_session("s-outer")
            side.module.tag("a", 1)
            with side.module.new_context():
                side.module.tag("b", 2)
                side.client.capture("inner")
                with side.module.new_context(fresh=True):
                    side.module.tag("c", 3)
                    side.client.capture("fresh")
            return side.client.capture("outer")

    assert_same(scenario)


def test_client_context_methods() -> None:
    def scenario(side: Side) -> Any:
        with side.client.new_context():
            side.client.identify_context("u3")
            side.client.set_context_session("s3")
            side.client.tag("k", "v")
            tags = side.client.get_tags()
            side.client.capture("ev", properties={"seen": sorted(tags)})
            return tags

    assert_same(scenario)


def test_scoped_decorator() -> None:
    def scenario(side: Side) -> Any:
        @side.module.scoped()
        def handler() -> Any:
            side.module.identify_context("decorated")
            side.module.tag("route", "/x")
            return side.client.capture("handled")

        return handler()

    assert_same(scenario)


def test_get_tags_is_a_copy_of_the_merged_tags() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.tag("a", 1)
            with side.module.new_context():
                side.module.tag("b", 2)
                tags = side.module.get_tags()
                tags["c"] = 3
                return [tags, side.module.get_tags()]

    assert_same(scenario)


@pytest.mark.parametrize("name", [{}, 1, None, ""], ids=repr)
def test_tag_with_odd_names(name: Any) -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.tag(name, 1)
            return side.client.capture("ev", distinct_id="u")

    assert_same(scenario, enable_exception_autocapture=False)


def test_a_device_id_in_the_context() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.identify_context("u")
            side.module.set_context_device_id("device-1")
            return side.client.capture("ev")

    _, ours = assert_same(scenario)
    assert ours.events[0]["properties"]["$device_id"] == "device-1"  # the deliberate extra


def test_inside_a_span_the_trace_ids_are_added() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("parity")

    def scenario(side: Side) -> Any:
        with tracer.start_as_current_span("work"):
            return side.client.capture("ev", distinct_id="u")

    theirs, ours = assert_same(scenario)
    assert "$trace_id" not in theirs.events[0]["properties"]
    assert len(ours.events[0]["properties"]["$trace_id"]) == 32


def test_a_session_without_identity() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.set_context_session("s-anon")
            return side.client.capture("ev")

    assert_same(scenario)


# -- person and group updates ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["set", "set_once"])
def test_person_updates(method: str) -> None:
    def scenario(side: Side) -> Any:
        return getattr(side.client, method)(
            distinct_id="u",
            properties={"email": "a@b.c"},
            timestamp=UTC_TIME,
            uuid=FIXED_UUID,
            disable_geoip=False,
        )

    assert_same(scenario, keep=("uuid", "timestamp"))


@pytest.mark.parametrize("method", ["set", "set_once"])
def test_person_updates_in_a_context_carry_tags_and_session(method: str) -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.identify_context("ctx")
            side.module.set_context_session("s9")
            side.module.tag("plan", "pro")
            return getattr(side.client, method)(properties={"email": "a@b.c"})

    assert_same(scenario)


@pytest.mark.parametrize("method", ["set", "set_once"])
@pytest.mark.parametrize("properties", [None, {}], ids=repr)
def test_person_updates_without_properties_send_nothing(method: str, properties: Any) -> None:
    assert_same(lambda s: getattr(s.client, method)(distinct_id="u", properties=properties))


@pytest.mark.parametrize("method", ["set", "set_once"])
def test_person_updates_without_a_person_send_nothing(method: str) -> None:
    assert_same(lambda s: getattr(s.client, method)(properties={"a": 1}))


def test_group_identify() -> None:
    assert_same(
        lambda s: s.client.group_identify(
            "company",
            "c1",
            {"name": "Acme"},
            timestamp=OFFSET_TIME,
            uuid=FIXED_UUID,
            disable_geoip=False,
            distinct_id="u1",
        ),
        keep=("uuid", "timestamp"),
    )


def test_group_identify_without_a_person_uses_a_random_person() -> None:
    assert_same(lambda s: s.client.group_identify("company", "c1"))


def test_group_identify_in_a_context() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.identify_context("ctx")
            side.module.set_context_session("s1")
            side.module.tag("t", 1)
            return side.client.group_identify("company", "c1", {"n": 1})

    assert_same(scenario)


@pytest.mark.parametrize(
    ("group_type", "group_key", "properties"),
    [
        ("company", "c1", 5),
        ("", "c1", None),
        ("company", "", None),
        (None, "c1", None),
        ("t", 7, None),
    ],
    ids=repr,
)
def test_group_identify_odd_arguments(group_type: Any, group_key: Any, properties: Any) -> None:
    assert_same(
        lambda s: s.client.group_identify(group_type, group_key, properties, distinct_id="u")
    )


def test_alias() -> None:
    assert_same(
        lambda s: s.client.alias(
            "anon-1", "user-1", timestamp=UTC_TIME, uuid=FIXED_UUID, disable_geoip=False
        ),
        keep=("uuid", "timestamp"),
    )


@pytest.mark.parametrize("previous", [None, "", 12], ids=repr)
def test_alias_odd_previous_ids(previous: Any) -> None:
    assert_same(lambda s: s.client.alias(previous, "user-1"))


def test_alias_from_a_context() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.identify_context("ctx-user")
            side.module.set_context_session("s1")
            side.module.tag("t", 1)
            return side.client.alias("anon-1", None)

    assert_same(scenario)


def test_alias_without_any_target_is_dropped() -> None:
    assert_same(lambda s: s.client.alias("anon-1", None))


# -- before_send ------------------------------------------------------------------------------


def _rename(event: dict[str, Any]) -> dict[str, Any]:
    event["event"] = "renamed"
    event["properties"]["added"] = {"when": OFFSET_TIME, "ids": {1, 2}}
    return event


def _new_uuid(event: dict[str, Any]) -> dict[str, Any]:
    event["uuid"] = FIXED_UUID
    return event


def _no_uuid(event: dict[str, Any]) -> dict[str, Any]:
    del event["uuid"]
    return event


def _bad_uuid(event: dict[str, Any]) -> dict[str, Any]:
    event["uuid"] = "not-a-uuid"
    return event


def _raises(event: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("boom")


def _not_a_dict(event: dict[str, Any]) -> Any:
    return ["nope"]


def _drop_some(event: dict[str, Any]) -> dict[str, Any] | None:
    return None if event["event"] == "secret" else event


@pytest.mark.parametrize(
    "hook",
    [_rename, _no_uuid, _bad_uuid, _raises, _not_a_dict, _drop_some],
    ids=lambda f: f.__name__,
)
def test_before_send(hook: Any) -> None:
    def scenario(side: Side) -> Any:
        return [
            side.client.capture("secret", distinct_id="u"),
            side.client.capture("public", distinct_id="u"),
        ]

    assert_same(scenario, before_send=hook)


def test_before_send_chooses_the_uuid() -> None:
    theirs, ours = assert_same(
        lambda s: s.client.capture("ev", distinct_id="u"), before_send=_new_uuid, keep=("uuid",)
    )
    assert theirs.result == ours.result == FIXED_UUID


def test_before_send_sees_the_finished_event() -> None:
    seen: dict[str, list[Any]] = {"posthog-python": [], "posthog-otel": []}

    def scenario(side: Side) -> Any:
        def hook(event: dict[str, Any]) -> dict[str, Any]:
            seen[side.name].append(sorted(event))
            seen[side.name].append(sorted(event.get("properties", {})))
            return event

        side.client.before_send = hook
        return side.client.capture("ev", distinct_id="u", properties={"a": 1})

    assert_same(scenario)
    assert seen["posthog-python"] == seen["posthog-otel"]


# -- disabled and misconfigured clients ---------------------------------------------------------


@pytest.mark.parametrize("options", [{"disabled": True}, {"send": False}], ids=repr)
def test_disabled_or_not_sending(options: dict[str, Any]) -> None:
    assert_same(lambda s: s.client.capture("ev", distinct_id="u"), **options)


def test_disabling_after_construction() -> None:
    def scenario(side: Side) -> Any:
        side.client.disabled = True
        first = side.client.capture("ev", distinct_id="u")
        side.client.disabled = False
        return [first, side.client.capture("ev2", distinct_id="u")]

    assert_same(scenario)
