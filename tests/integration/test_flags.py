"""Feature flags through posthog-otel against a loopback PostHog (``/flags`` and capture).

What the parity suite cannot show: identity defaulting from our context, the module-level
functions, that posthog-python never sends on its own, and failure handling.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator

import pytest

import posthog_otel
from posthog_otel import Client, default_client
from tests.support.flags_server import Flag, FlagsServer

pytest.importorskip("posthog", reason="feature flags are evaluated by posthog-python")

FLAGS = [Flag("beta", variant="b", payload={"n": 1}), Flag("vip", only_for=frozenset({"u9"}))]


@pytest.fixture(autouse=True)
def _quiet_deprecations() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@pytest.fixture
def server() -> Iterator[FlagsServer]:
    with FlagsServer(FLAGS, personal_api_key="phx_local") as running:
        yield running


@pytest.fixture
def client(server: FlagsServer) -> Iterator[Client]:
    made = Client("phc_flags", host=server.url, sync_mode=True)
    yield made
    made.shutdown(2.0)


def flag_called(server: FlagsServer) -> list[dict[str, object]]:
    return [e for e in server.events if e["event"] == "$feature_flag_called"]


def test_identity_groups_and_device_default_to_the_context(
    client: Client, server: FlagsServer
) -> None:
    with posthog_otel.new_context():
        posthog_otel.identify_context("u9")
        posthog_otel.set_context_device_id("dev-1")
        posthog_otel.tag("$groups", {"company": "acme"})
        posthog_otel.set_context_session("sess-1")
        assert client.feature_enabled("vip") is True
        assert client.get_all_flags() == {"beta": "b", "vip": True}
    request = server.flag_requests[0].body
    assert request["distinct_id"] == "u9"
    assert request["groups"] == {"company": "acme"}
    assert request["device_id"] == "dev-1"
    (event,) = flag_called(server)
    assert event["distinct_id"] == "u9"
    props = event["properties"]
    assert isinstance(props, dict)
    assert props["$session_id"] == "sess-1"
    assert props["$groups"] == {"company": "acme"}
    assert props["$lib"] == "posthog-otel"


def test_explicit_arguments_win_over_the_context(client: Client, server: FlagsServer) -> None:
    with posthog_otel.new_context():
        posthog_otel.identify_context("u9")
        posthog_otel.tag("$groups", {"company": "acme"})
        assert client.feature_enabled("vip", "u1", groups={"team": "t"}) is False
    assert server.flag_requests[0].body["distinct_id"] == "u1"
    assert server.flag_requests[0].body["groups"] == {"team": "t"}


def test_module_functions_use_the_default_client(client: Client, server: FlagsServer) -> None:
    previous = default_client.set_client(client)
    try:
        with posthog_otel.new_context():
            posthog_otel.identify_context("u9")
            assert posthog_otel.get_feature_flag("beta") == "b"
            assert posthog_otel.get_feature_flag_payload("beta") == {"n": 1}
            assert posthog_otel.get_all_flags_and_payloads()["featureFlags"] == {
                "beta": "b",
                "vip": True,
            }
            snapshot = posthog_otel.evaluate_flags()
            assert snapshot.get_flag("vip") is True
            posthog_otel.capture("paid", flags=snapshot)
            posthog_otel.capture("paid_again", send_feature_flags=True)
    finally:
        default_client.set_client(previous)
    paid = {e["event"]: e["properties"] for e in server.events}
    assert paid["paid"]["$active_feature_flags"] == ["beta", "vip"]
    assert paid["paid_again"]["$feature/vip"] is True


def test_one_flag_called_per_flag_and_user(client: Client, server: FlagsServer) -> None:
    for _ in range(5):
        for user in ("u1", "u2", "u9"):
            client.get_feature_flag("beta", user)
            client.feature_enabled("vip", user)
    called = sorted(
        (str(e["distinct_id"]), e["properties"]["$feature_flag"]) for e in flag_called(server)
    )  # type: ignore[index]
    assert called == [(u, f) for u in ("u1", "u2", "u9") for f in ("beta", "vip")]


def test_concurrent_reads_send_only_through_our_client(client: Client, server: FlagsServer) -> None:
    threads = 4

    def read() -> None:
        for _ in range(10):
            client.get_feature_flag("beta", "u1")

    workers = [threading.Thread(target=read) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    client.flush()
    # posthog-python checks and records a config version 1 flag event in two steps, so
    # reads racing on the first evaluation may each send one (it does the same on its own)
    assert 1 <= len(flag_called(server)) <= threads
    # every event came through our transport: the posthog-python client sent nothing itself
    agents = {r.headers.get("User-Agent", "") for r in server.requests}
    assert agents and all(agent.startswith("posthog-otel") for agent in agents)


def test_our_before_send_sees_flag_events(server: FlagsServer) -> None:
    seen: list[str] = []

    def before_send(event: dict[str, object]) -> dict[str, object] | None:
        seen.append(str(event["event"]))
        return None

    client = Client("phc_flags", host=server.url, sync_mode=True, before_send=before_send)
    try:
        assert client.get_feature_flag("beta", "u1") == "b"
        assert client.get_feature_flag("beta", "u1") == "b"
    finally:
        client.shutdown(2.0)
    assert seen == ["$feature_flag_called"]
    assert server.events == []


def test_local_evaluation_polls_with_the_personal_key_and_stops_on_shutdown(
    server: FlagsServer,
) -> None:
    client = Client(
        "phc_flags", host=server.url, sync_mode=True, personal_api_key="phx_local", poll_interval=60
    )
    assert client.get_feature_flag("vip", "u9", only_evaluate_locally=True) is True
    assert server.flag_requests == []
    definitions = server.definition_requests[0]
    assert definitions.headers["Authorization"] == "Bearer phx_local"
    assert definitions.query["token"] == ["phc_flags"]
    assert len(client.feature_flag_definitions()) == 2
    pollers = [t for t in threading.enumerate() if t.name.startswith("PosthogPoller")]
    client.shutdown(2.0)
    for thread in pollers:
        thread.join(5)
        assert not thread.is_alive()


def test_a_failing_flags_endpoint_answers_none_and_capture_still_sends() -> None:
    with FlagsServer(FLAGS, flags_status=500) as failing:
        client = Client("phc_flags", host=failing.url, sync_mode=True)
        try:
            assert client.get_feature_flag("beta", "u1") is None
            assert client.capture("ev", distinct_id="u1", send_feature_flags=True) is not None
        finally:
            client.shutdown(2.0)
        events = {e["event"]: e["properties"] for e in failing.events}
    assert events["$feature_flag_called"]["$feature_flag_error"] == "api_error_500"
    assert not any(key.startswith("$feature/") for key in events["ev"])


def test_a_bad_send_feature_flags_value_is_logged_not_raised(
    client: Client, server: FlagsServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="posthog_otel"):
        assert client.capture("ev", distinct_id="u1", send_feature_flags="yes") is not None
    client.flush()
    (event,) = server.events
    assert not any(key.startswith("$feature") for key in event["properties"])
    assert "send_feature_flags" in caplog.text


def test_identity_from_posthog_baggage_without_a_context(
    client: Client, server: FlagsServer
) -> None:
    from opentelemetry import baggage, context

    ctx = baggage.set_baggage("posthog.distinct_id", "u9")
    ctx = baggage.set_baggage("posthog.device_id", "dev-7", ctx)
    token = context.attach(ctx)
    try:
        assert client.feature_enabled("vip") is True
    finally:
        context.detach(token)
    assert server.flag_requests[0].body["distinct_id"] == "u9"
    assert server.flag_requests[0].body["device_id"] == "dev-7"
    assert [e["distinct_id"] for e in flag_called(server)] == ["u9"]


def test_module_attributes_configure_flag_options(server: FlagsServer) -> None:
    posthog_otel.api_key = "phc_flags"
    posthog_otel.host = server.url
    posthog_otel.personal_api_key = "phx_local"
    try:
        assert posthog_otel.get_feature_flag("vip", "u9", only_evaluate_locally=True) is True
        assert server.definition_requests[0].headers["Authorization"] == "Bearer phx_local"
    finally:
        posthog_otel.api_key = posthog_otel.host = None
        posthog_otel.personal_api_key = None
