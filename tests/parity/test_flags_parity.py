"""Feature flags: the same calls give the same values and the same events as posthog-python.

Both sides talk to their own loopback :class:`FlagsServer` (the same flags on each), which
answers ``/flags`` and local evaluation and records the events each client sends.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.flags_server import Flag, FlagsServer

from .harness import Outcome, Side, assert_same

PERSONAL_KEY = "phx_parity_personal"
RULE = "0b5f7a52-5a3f-4c3a-9d7e-2f0c4e1d9a11"

FLAGS = (
    Flag("beta", variant="treatment", payload={"color": "blue"}, id=11, version=3),
    Flag("onoff", only_for=frozenset({"u1"}), payload=True, id=12),
    Flag("dark-mode", id=13, version=2),
)


@pytest.fixture(autouse=True)
def _quiet_deprecations() -> Iterator[None]:
    # posthog-python 7.9x deprecates its single-flag getters in favour of evaluate_flags()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def server(*flags: Flag, **options: Any) -> Callable[[], FlagsServer]:
    return functools.partial(FlagsServer, flags or FLAGS, **options)


def same(scenario: Callable[[Side], Any], **kwargs: Any) -> tuple[Outcome, Outcome]:
    kwargs.setdefault("server", server())
    theirs, ours = assert_same(scenario, **kwargs)
    return theirs, ours


def flag_called(outcome: Outcome) -> list[dict[str, Any]]:
    return [e for e in outcome.events if e["event"] == "$feature_flag_called"]


# -- values ------------------------------------------------------------------------------


def test_get_feature_flag_values_and_one_flag_called_per_flag_and_user() -> None:
    def scenario(side: Side) -> Any:
        c = side.client
        return [
            c.get_feature_flag("beta", "u1"),
            c.get_feature_flag("beta", "u1"),
            c.get_feature_flag("onoff", "u1"),
            c.get_feature_flag("onoff", "u2"),
            c.get_feature_flag("onoff", "u2"),
            c.get_feature_flag("missing", "u1"),
        ]

    theirs, ours = same(scenario)
    assert ours.result == ["treatment", "treatment", True, False, False, None]
    called = [(e["distinct_id"], e["properties"]["$feature_flag"]) for e in flag_called(ours)]
    assert called == [("u1", "beta"), ("u1", "onoff"), ("u2", "onoff"), ("u1", "missing")]
    assert len(flag_called(theirs)) == len(called)


def test_feature_enabled() -> None:
    _, ours = same(
        lambda s: [
            s.client.feature_enabled("onoff", "u1"),
            s.client.feature_enabled("onoff", "u2"),
            s.client.feature_enabled("beta", "u3"),
            s.client.feature_enabled("missing", "u3"),
        ]
    )
    assert ours.result == [True, False, True, None]


def test_send_feature_flag_events_false_sends_none() -> None:
    _, ours = same(
        lambda s: s.client.get_feature_flag("beta", "u1", send_feature_flag_events=False)
    )
    assert ours.result == "treatment" and ours.events == []


def test_payloads() -> None:
    _, ours = same(
        lambda s: [
            s.client.get_feature_flag_payload("beta", "u1"),
            s.client.get_feature_flag_payload("onoff", "u1"),
            s.client.get_feature_flag_payload("onoff", "u2"),
            s.client.get_feature_flag_payload("beta", "u1", match_value="treatment"),
        ]
    )
    assert ours.result == [{"color": "blue"}, True, None, {"color": "blue"}]


def test_payload_with_flag_events() -> None:
    same(lambda s: s.client.get_feature_flag_payload("beta", "u1", send_feature_flag_events=True))


def test_get_feature_flag_result() -> None:
    def scenario(side: Side) -> Any:
        result = side.client.get_feature_flag_result("beta", "u1")
        return (result.key, result.enabled, result.variant, result.payload, result.get_value())

    _, ours = same(scenario)
    assert ours.result == ("beta", True, "treatment", {"color": "blue"}, "treatment")


def test_all_flags_and_payloads() -> None:
    _, ours = same(
        lambda s: [
            s.client.get_all_flags("u2"),
            s.client.get_all_flags_and_payloads("u1"),
            s.client.get_all_flags("u1", flag_keys_to_evaluate=["beta"]),
        ]
    )
    assert ours.result[0] == {"beta": "treatment", "onoff": False, "dark-mode": True}
    assert ours.result[2] == {"beta": "treatment"}
    assert ours.events == []


def test_evaluate_flags_snapshot_reads_and_capture_with_flags() -> None:
    def scenario(side: Side) -> Any:
        snapshot = side.client.evaluate_flags("u1")
        seen = [snapshot.is_enabled("beta"), snapshot.get_flag("onoff"), sorted(snapshot.keys)]
        side.client.capture("checkout", distinct_id="u1", flags=snapshot)
        return seen

    _, ours = same(scenario)
    assert ours.result == [True, True, ["beta", "dark-mode", "onoff"]]
    checkout = next(e for e in ours.events if e["event"] == "checkout")
    assert checkout["properties"]["$feature/beta"] == "treatment"


# -- what the flag events carry ------------------------------------------------------------


def test_flag_called_carries_the_context() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.identify_context("u1")
            side.module.set_context_session("s-1")
            side.module.tag("plan", "pro")
            return side.client.get_feature_flag("beta", "u1")

    same(scenario)


def test_flag_called_with_groups_once_per_group() -> None:
    def scenario(side: Side) -> Any:
        return [
            side.client.get_feature_flag("beta", "u1", groups={"company": "c1"}),
            side.client.get_feature_flag("beta", "u1", groups={"company": "c1"}),
            side.client.get_feature_flag("beta", "u1", groups={"company": "c2"}),
        ]

    _, ours = same(scenario)
    assert [e["properties"]["$groups"] for e in flag_called(ours)] == [
        {"company": "c1"},
        {"company": "c2"},
    ]


def test_flag_called_goes_through_before_send_and_super_properties() -> None:
    def before_send(event: dict[str, Any]) -> dict[str, Any] | None:
        if event["properties"].get("$feature_flag") == "dark-mode":
            return None
        event["properties"]["checked"] = True
        return event

    _, ours = same(
        lambda s: [s.client.get_feature_flag(k, "u1") for k in ("beta", "dark-mode")],
        before_send=before_send,
        super_properties={"app": "shop"},
    )
    assert [e["properties"]["$feature_flag"] for e in ours.events] == ["beta"]
    assert ours.events[0]["properties"]["checked"] is True


def test_geoip_per_call() -> None:
    same(lambda s: s.client.get_feature_flag("beta", "u1", disable_geoip=False))


def test_experiment_split_sends_flag_called_and_exposure_once() -> None:
    experiment = Flag("exp", variant="test", experiment_rule=RULE, id=21, has_experiment=True)

    def scenario(side: Side) -> Any:
        return [side.client.get_feature_flag("exp", "u1") for _ in range(3)]

    _, ours = same(scenario, server=server(experiment))
    assert sorted(e["event"] for e in ours.events) == [
        "$experiment_exposure",
        "$feature_flag_called",
    ]


def test_before_send_dropping_experiment_events_keeps_them_deduplicated() -> None:
    experiment = Flag("exp", variant="test", experiment_rule=RULE, id=21, has_experiment=True)
    offered: list[str] = []

    def before_send(event: dict[str, Any]) -> None:
        offered.append(event["event"])
        return None

    same(
        lambda s: [s.client.get_feature_flag("exp", "u1") for _ in range(3)],
        server=server(experiment),
        before_send=before_send,
    )
    # each side offers each event once, however often the flag is read
    assert sorted(offered) == ["$experiment_exposure"] * 2 + ["$feature_flag_called"] * 2


def test_minimal_flag_called_events() -> None:
    plain = Flag("plain", id=31, has_experiment=False)

    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.tag("dropped_by_the_allowlist", 1)
            return side.client.get_feature_flag("plain", "u1")

    _, ours = same(
        scenario,
        server=server(plain, minimal_flag_called_events=True),
        super_properties={"also_dropped": 1},
    )
    props = ours.events[0]["properties"]
    assert "dropped_by_the_allowlist" not in props and "also_dropped" not in props
    assert props["$feature_flag"] == "plain"


# -- capture(send_feature_flags=...) --------------------------------------------------------


def test_capture_send_feature_flags_true() -> None:
    _, ours = same(
        lambda s: s.client.capture("purchase", distinct_id="u2", send_feature_flags=True)
    )
    props = ours.events[0]["properties"]
    assert props["$feature/onoff"] is False
    assert props["$active_feature_flags"] == ["beta", "dark-mode"]


def test_capture_send_feature_flags_false() -> None:
    _, ours = same(
        lambda s: s.client.capture("purchase", distinct_id="u2", send_feature_flags=False)
    )
    assert not any(k.startswith("$feature") for k in ours.events[0]["properties"])


def test_capture_send_feature_flags_options_dict() -> None:
    def scenario(side: Side) -> Any:
        return side.client.capture(
            "purchase",
            distinct_id="u1",
            properties={"$feature/beta": "from-caller"},
            send_feature_flags={"flag_keys_filter": ["beta", "onoff"], "person_properties": {}},
        )

    _, ours = same(scenario)
    props = ours.events[0]["properties"]
    assert props["$feature/beta"] == "from-caller"  # the event's own properties win
    assert "$feature/dark-mode" not in props


def test_capture_send_feature_flags_in_a_context_and_personless() -> None:
    def scenario(side: Side) -> Any:
        with side.module.new_context():
            side.module.identify_context("u1")
            side.client.capture("in_context", send_feature_flags=True)
        side.client.capture("personless", send_feature_flags=True)

    _, ours = same(scenario)
    personless = ours.events[1]["properties"]
    assert personless["$process_person_profile"] is False
    assert personless["$feature/onoff"] is False


# -- local evaluation -------------------------------------------------------------------------


def local() -> dict[str, Any]:
    return {
        "server": server(personal_api_key=PERSONAL_KEY),
        "personal_api_key": PERSONAL_KEY,
        "poll_interval": 300,
    }


def test_local_evaluation_values_and_events() -> None:
    def scenario(side: Side) -> Any:
        side.client.load_feature_flags()
        return [
            len(side.client.feature_flag_definitions()),
            side.client.get_feature_flag("beta", "u1"),
            side.client.get_feature_flag("onoff", "u1", only_evaluate_locally=True),
            side.client.get_feature_flag("onoff", "u2", only_evaluate_locally=True),
            side.client.get_all_flags("u2", only_evaluate_locally=True),
        ]

    _, ours = same(scenario, **local())
    assert ours.result[:4] == [3, "treatment", True, False]
    assert all(e["properties"]["locally_evaluated"] is True for e in flag_called(ours))


def test_capture_send_feature_flags_locally() -> None:
    def scenario(side: Side) -> Any:
        side.client.load_feature_flags()
        return side.client.capture(
            "purchase", distinct_id="u1", send_feature_flags={"only_evaluate_locally": True}
        )

    _, ours = same(scenario, **local())
    assert ours.events[0]["properties"]["$active_feature_flags"] == ["beta", "onoff", "dark-mode"]


def test_definitions_need_the_personal_key() -> None:
    def scenario(side: Side) -> Any:
        return side.client.get_feature_flag("beta", "u1", only_evaluate_locally=True)

    _, ours = same(
        scenario,
        server=server(personal_api_key="phx_other"),
        personal_api_key=PERSONAL_KEY,
        poll_interval=300,
    )
    assert ours.result is None


# -- signatures ---------------------------------------------------------------------------------

FLAG_API = (
    "feature_enabled",
    "get_feature_flag",
    "get_feature_flag_result",
    "get_feature_flag_payload",
    "get_all_flags",
    "get_all_flags_and_payloads",
    "evaluate_flags",
    "get_remote_config_payload",
    "load_feature_flags",
    "feature_flag_definitions",
)


@pytest.mark.parametrize("name", FLAG_API)
def test_flag_functions_take_posthog_pythons_parameters(name: str) -> None:
    import posthog

    import posthog_otel

    for theirs, ours in (
        (getattr(posthog.Client, name, None), getattr(posthog_otel.Client, name)),
        (getattr(posthog, name, None), getattr(posthog_otel, name)),
    ):
        if theirs is None:  # not in this posthog-python version
            continue
        expected = inspect.signature(theirs).parameters
        got = inspect.signature(ours).parameters
        for param in expected.values():
            assert param.name in got, f"{name} lacks {param.name}"
            mine = got[param.name]
            assert mine.kind == param.kind, f"{name}({param.name}): {mine.kind} != {param.kind}"
            if param.default is not inspect.Parameter.empty:
                assert mine.default == param.default, f"{name}({param.name}) default"


def test_capture_takes_the_flag_arguments() -> None:
    import posthog_otel

    for function in (posthog_otel.Client.capture, posthog_otel.capture):
        params = inspect.signature(function).parameters
        assert params["send_feature_flags"].default is False
        assert params["flags"].default is None
