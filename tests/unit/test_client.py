"""The Client's event building: resolution rules, standard properties, person/group events."""

from __future__ import annotations

import dataclasses
import logging
import math
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as posthog
from posthog_otel import Client, global_client
from posthog_otel.config import ClientSettings
from posthog_otel.testing import memory_client
from posthog_otel.testing.capture_server import CaptureServer


def test_capture_returns_the_uuid_and_sends_the_wire_shape(capture_server: CaptureServer) -> None:
    client = Client("phc_key", host=capture_server.url + "/", flush_at=1)
    event_uuid = client.capture("signed_up", distinct_id="u1", properties={"plan": "pro"})
    assert client.flush(5)
    (request,) = capture_server.accepted
    assert request.path == "/batch/"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["User-Agent"].startswith("posthog-otel/")
    body = request.body
    assert body is not None
    assert body["api_key"] == "phc_key"
    assert body["historical_migration"] is False
    assert datetime.fromisoformat(body["sent_at"]).tzinfo is not None
    (event,) = body["batch"]
    assert event["uuid"] == event_uuid
    assert str(uuid.UUID(event_uuid)) == event_uuid
    assert event["event"] == "signed_up"
    assert event["distinct_id"] == "u1"
    assert "type" not in event
    assert datetime.fromisoformat(event["timestamp"]).utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    props = event["properties"]
    assert props["plan"] == "pro"
    assert props["$lib"] == "posthog-otel"
    assert props["$lib_version"] == posthog.__version__
    assert props["$geoip_disable"] is True
    assert props["$is_server"] is True
    for key in ("$python_runtime", "$python_version", "$os", "$os_version"):
        assert props[key]
    client.shutdown(1)


def test_personless_event_without_any_distinct_id() -> None:
    client, events = memory_client()
    client.capture("anonymous_thing")
    (event,) = events
    assert uuid.UUID(event["distinct_id"])
    assert event["properties"]["$process_person_profile"] is False
    assert "$context_tags" not in event["properties"]


def test_property_precedence_tags_then_caller_then_system_then_super() -> None:
    client, events = memory_client(super_properties={"env": "prod", "shared": "super"})
    with posthog.new_context():
        posthog.tag("shared", "tag")
        posthog.tag("only_tag", 1)
        posthog.tag("$lib", "spoofed-by-tag")
        client.capture("e", properties={"shared": "caller", "$lib": "spoofed-by-caller"})
    props = events[0]["properties"]
    assert props["env"] == "prod"
    assert props["shared"] == "super"  # super properties win, as in posthog-python
    assert props["only_tag"] == 1
    assert props["$lib"] == "posthog-otel"
    assert sorted(props["$context_tags"]) == ["$lib", "only_tag", "shared"]


def test_session_and_window_from_context_unless_given() -> None:
    client, events = memory_client()
    with posthog.new_context():
        posthog.set_context_session("ctx-session")
        posthog.set_context_window_id("ctx-window")
        client.capture("a")
        client.capture("b", properties={"$session_id": "explicit"})
    assert events[0]["properties"]["$session_id"] == "ctx-session"
    assert events[0]["properties"]["$window_id"] == "ctx-window"
    assert events[1]["properties"]["$session_id"] == "explicit"


def test_trace_and_span_ids_of_the_active_span() -> None:
    client, events = memory_client()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        client.capture("inside")
    client.capture("outside")
    ctx = span.get_span_context()
    inside, outside = events
    assert inside["properties"]["$trace_id"] == format(ctx.trace_id, "032x")
    assert inside["properties"]["$span_id"] == format(ctx.span_id, "016x")
    assert "$trace_id" not in outside["properties"]


def test_groups_timestamp_uuid_and_geoip() -> None:
    client, events = memory_client()
    given = uuid.uuid4()
    when = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    returned = client.capture(
        "e",
        distinct_id=42,
        groups={"company": "acme"},
        timestamp=when,
        uuid=given,
        disable_geoip=False,
    )
    event = events[0]
    assert returned == str(given) == event["uuid"]
    assert event["distinct_id"] == "42"
    assert event["timestamp"] == "2026-01-02T03:04:05.123456+00:00"
    assert event["properties"]["$groups"] == {"company": "acme"}
    assert "$geoip_disable" not in event["properties"]


def test_invalid_uuid_is_replaced_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    client, _events = memory_client()
    returned = client.capture("e", uuid="not-a-uuid")
    assert returned is not None and returned != "not-a-uuid"
    assert uuid.UUID(returned)
    assert "invalid event uuid" in caplog.text


@dataclasses.dataclass
class _Point:
    x: int
    y: int


def test_values_are_made_json_safe() -> None:
    client, events = memory_client()
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    client.capture(
        "e",
        properties={
            "decimal": Decimal("1.25"),
            "uuid": uuid.UUID(int=1),
            "set": {3},
            "tuple": (1, 2),
            "bytes": "héllo".encode(),
            "point": _Point(1, 2),
            "when": datetime(2026, 1, 1, tzinfo=timezone.utc),
            "day": date(2026, 1, 1),
            "nan": math.nan,
            "inf": math.inf,
            "object": object,
            "cycle": cyclic,
            "int_keys": {1: "a"},
            "obj_keys": {(1, 2): "b"},
        },
    )
    props = events[0]["properties"]
    assert props["decimal"] == 1.25
    assert props["uuid"] == "00000000-0000-0000-0000-000000000001"
    assert props["set"] == [3]
    assert props["tuple"] == [1, 2]
    assert props["bytes"] == "héllo"
    assert props["point"] == {"x": 1, "y": 2}
    assert props["when"] == "2026-01-01T00:00:00+00:00"
    assert props["day"] == "2026-01-01"
    assert props["nan"] is None and props["inf"] is None
    assert props["object"] is None  # posthog-python sends null for what it cannot convert
    assert props["cycle"] == [1, "<cycle>"]
    assert props["int_keys"] == {"1": "a"}
    assert props["obj_keys"] == {"(1, 2)": "b"}


def test_before_send_runs_last_and_can_drop(caplog: pytest.LogCaptureFixture) -> None:
    def before_send(event: dict[str, Any]) -> dict[str, Any] | None:
        if event["event"] == "drop-me":
            return None
        if event["event"] == "explode":
            raise RuntimeError("bad hook")
        event["properties"]["seen_lib"] = event["properties"]["$lib"]
        return event

    client, events = memory_client(before_send=before_send)
    assert client.capture("keep") is not None
    assert client.capture("drop-me") is None
    assert client.capture("explode") is None
    assert [e["event"] for e in events] == ["keep"]
    assert events[0]["properties"]["seen_lib"] == "posthog-otel"
    assert "before_send raised" in caplog.text


def test_set_and_set_once_need_a_distinct_id() -> None:
    client, events = memory_client()
    assert client.set(properties={"name": "Max"}) is None
    with posthog.new_context():
        posthog.identify_context("ctx-user")
        assert client.set(properties={"name": "Max"}) is not None
        assert client.set_once(properties={"first": "/blog"}) is not None
    assert client.set(distinct_id="explicit", properties={"a": 1}) is not None
    set_event, once_event, explicit = events
    assert set_event["event"] == "$set" and set_event["distinct_id"] == "ctx-user"
    assert set_event["$set"] == {"name": "Max", "$context_tags": []}  # as posthog-python
    assert once_event["event"] == "$set_once"
    assert once_event["$set_once"] == {"first": "/blog", "$context_tags": []}
    assert explicit["distinct_id"] == "explicit"


def test_capture_with_set_properties_inside_properties() -> None:
    client, events = memory_client()
    client.capture(
        "event_name",
        distinct_id="user-distinct-id",
        properties={"$set": {"name": "Max Hedgehog"}, "$set_once": {"initial_url": "/blog"}},
    )
    assert events[0]["properties"]["$set"] == {"name": "Max Hedgehog"}
    assert events[0]["properties"]["$set_once"] == {"initial_url": "/blog"}


def test_group_identify_and_alias() -> None:
    client, events = memory_client()
    client.group_identify("company", "acme", {"seats": 10})
    assert client.alias("anon-1") is None  # nothing to alias to
    with posthog.new_context():
        posthog.identify_context("real-user")
        client.alias("anon-1")
    group, alias = events
    assert group["event"] == "$groupidentify"
    assert group["properties"]["$group_type"] == "company"
    assert group["properties"]["$group_key"] == "acme"
    assert group["properties"]["$group_set"] == {"seats": 10}
    assert "$process_person_profile" not in group["properties"]  # always personful
    assert alias["event"] == "$create_alias"
    assert alias["distinct_id"] == "anon-1"
    assert alias["properties"]["distinct_id"] == "anon-1"
    assert alias["properties"]["alias"] == "real-user"


def test_capture_exception_builds_exception_list_once() -> None:
    client, events = memory_client()
    try:
        raise ValueError("bad input")
    except ValueError as exc:
        first = client.capture_exception(exc, properties={"where": "test"})
        second = client.capture_exception(exc)
    assert first is not None and second is None
    (event,) = events
    assert event["event"] == "$exception"
    assert event["properties"]["where"] == "test"
    assert event["properties"]["$exception_level"] == "error"
    (entry,) = event["properties"]["$exception_list"]
    assert entry["type"] == "ValueError"
    assert entry["mechanism"] == {
        "exception_id": 0,
        "type": "generic",
        "handled": True,
        "synthetic": False,
    }
    frames = entry["stacktrace"]["frames"]
    assert frames[-1]["function"] == "test_capture_exception_builds_exception_list_once"
    assert frames[-1]["context_line"].strip() == 'raise ValueError("bad input")'


def test_capture_exception_defaults_to_the_handled_exception() -> None:
    client, events = memory_client()
    assert client.capture_exception() is None
    try:
        {}["missing"]
    except KeyError:
        assert client.capture_exception() is not None
    assert events[0]["properties"]["$exception_list"][0]["type"] == "KeyError"


def test_invalid_option_values_are_logged_and_replaced_by_the_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad: list[dict[str, Any]] = [
        {"flush_at": 0},
        {"flush_at": "10"},
        {"flush_interval": -1},
        {"max_queue_size": 0},
        {"gzip": "yes"},
        {"max_retries": -1},
        {"timeout": 0},
        {"before_send": "nope"},
        {"on_error": 3},
        {"super_properties": [1]},
        {"in_app_modules": "myapp"},
    ]
    caplog.set_level(logging.WARNING, logger="posthog.otel")
    defaults = ClientSettings()
    for options in bad:
        name = next(iter(options))
        caplog.clear()
        client = Client("phc_x", host="http://127.0.0.1:9", **options)
        assert getattr(client.settings, name) == getattr(defaults, name)
        assert name in caplog.text
        client.shutdown(0)
    # the strict form, for code that wants to fail fast, still raises naming the option
    for options in bad:
        name = next(iter(options))
        with pytest.raises(ValueError, match=name):
            ClientSettings.build("phc_x", **options)
    with pytest.raises(TypeError, match="no_such_option"):
        Client("phc_x", no_such_option=1)
    with pytest.raises(ValueError, match="host"):
        Client("phc_x", host="ftp://example")


def test_host_normalisation() -> None:
    assert Client("k", host=" https://app.posthog.com/ ").host == "https://us.i.posthog.com"
    assert Client("k", host="https://eu.posthog.com").host == "https://eu.i.posthog.com"
    assert Client("k", host="http://127.0.0.1:8010/").host == "http://127.0.0.1:8010"


def test_repr_never_shows_the_api_key() -> None:
    client = Client("phc_secret_value", host="http://127.0.0.1:9")
    assert "phc_secret_value" not in repr(client)
    assert "phc_secret_value" not in repr(client.settings)
    client.shutdown(0)


def test_no_api_key_disables_the_client_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from posthog_otel import client as client_module

    client_module._not_sending_warned = False
    caplog.set_level(logging.WARNING, logger="posthog.otel")
    first = Client()
    second = Client()
    with posthog.new_context():
        posthog.identify_context("u")
        assert first.capture("e") is None
    assert second.capture("e") is None
    assert first.disabled and second.disabled
    warnings = [r for r in caplog.records if "NOT sent" in r.getMessage()]
    assert len(warnings) == 1
    assert first.stats()["dropped"] == {"no_api_key": 1}


def test_disabled_client_returns_none() -> None:
    client = Client("phc_x", disabled=True)
    assert client.capture("e") is None
    assert client.capture_exception(ValueError("x")) is None


def test_module_level_api_uses_env_configuration(
    capture_server: CaptureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTHOG_PROJECT_API_KEY", "phc_env")
    monkeypatch.setenv("POSTHOG_HOST", capture_server.url)
    with posthog.new_context():
        posthog.identify_context("module-user")
        posthog.capture("from_module")
        posthog.set(properties={"a": 1})
    assert posthog.flush(5)
    names = [e["event"] for e in capture_server.events]
    assert names == ["from_module", "$set"]
    assert capture_server.accepted[0].body["api_key"] == "phc_env"  # type: ignore[index]
    assert posthog.shutdown(2)


def test_module_level_attributes_configure_the_default_client(
    capture_server: CaptureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(posthog, "api_key", "phc_attr", raising=False)
    monkeypatch.setattr(posthog, "host", capture_server.url, raising=False)
    posthog.capture("attr_configured", distinct_id="d")
    assert posthog.flush(5)
    assert capture_server.events[0]["event"] == "attr_configured"


def test_setup_replaces_the_default_client(capture_server: CaptureServer) -> None:
    client = posthog.setup(api_key="phc_setup", host=capture_server.url, flush_at=1)
    assert global_client.get_client() is client
    posthog.capture("via_setup", distinct_id="d")
    assert posthog.flush(5)
    assert capture_server.events[0]["event"] == "via_setup"


def test_a_host_without_a_scheme_gets_one() -> None:
    assert Client("k", host="127.0.0.1:8020").host == "http://127.0.0.1:8020"
    assert Client("k", host="localhost:8010/").host == "http://localhost:8010"
    assert Client("k", host="sink.localhost").host == "http://sink.localhost"
    assert Client("k", host="[::1]:8010").host == "http://[::1]:8010"
    assert Client("k", host="eu.i.posthog.com").host == "https://eu.i.posthog.com"
    assert Client("k", host="eu.posthog.com").host == "https://eu.i.posthog.com"
    assert Client("k", host="posthog.internal:8000").host == "https://posthog.internal:8000"
    assert Client("k", host="10.0.0.5:8000").host == "https://10.0.0.5:8000"
    for bad in ("", "   ", "ftp://example", "http://", "host:notaport", "a b"):
        with pytest.raises(ValueError, match="host"):
            Client("k", host=bad)


def test_a_host_without_a_scheme_delivers(
    capture_server: CaptureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTHOG_API_KEY", "phc_k")
    monkeypatch.setenv("POSTHOG_HOST", capture_server.url.removeprefix("http://"))
    assert posthog.capture("x", distinct_id="u") is not None
    assert posthog.flush(5)
    assert [e["event"] for e in capture_server.events] == ["x"]


def test_an_invalid_environment_is_reported_once_and_calls_never_raise(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("POSTHOG_API_KEY", "phc_k")
    monkeypatch.setenv("POSTHOG_HOST", "ftp://127.0.0.1:8020")
    caplog.set_level(logging.WARNING, logger="posthog.otel")
    posthog.capture("x", distinct_id="u")  # never raises; the event is counted, not sent
    with posthog.new_context():
        posthog.identify_context("u")
        posthog.capture("y")
        posthog.set(properties={"a": 1})
    assert posthog.flush(1)
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1, [r.getMessage() for r in problems]
    message = problems[0].getMessage()
    assert "ftp://127.0.0.1:8020" in message and "invalid_config" in message
    assert problems[0].exc_info is None
    stats = global_client.get_client().stats()
    assert stats["dropped"] == {"invalid_config": 3}
    assert stats["sent"] == 0


def test_instrument_with_an_invalid_environment_says_so_once_and_never_raises(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("POSTHOG_API_KEY", "phc_k")
    monkeypatch.setenv("POSTHOG_HOST", "http://127.0.0.1:notaport")
    caplog.set_level(logging.WARNING, logger="posthog.otel")
    instrumentor = posthog.PosthogInstrumentor()
    instrumentor.instrument(tracer_provider=TracerProvider(), instrument_libraries=False)
    try:
        posthog.capture("x", distinct_id="u")
        posthog.capture("y", distinct_id="u")
    finally:
        instrumentor.uninstrument()
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1, [r.getMessage() for r in problems]
    assert "notaport" in problems[0].getMessage()
    assert problems[0].exc_info is None
    assert global_client.get_client().stats()["dropped"] == {"invalid_config": 2}


def test_capture_returns_none_for_an_event_it_did_not_queue(capture_server: CaptureServer) -> None:
    client = Client(
        "phc_x", host=capture_server.url, max_queue_size=1, flush_at=100, flush_interval=60
    )
    try:
        assert client.capture("kept", distinct_id="u") is not None
        assert client.capture("overflow", distinct_id="u") is None  # queue full: dropped
        assert client.stats()["dropped"].get("queue_full") == 1
    finally:
        client.shutdown(2)
    assert client.capture("late", distinct_id="u") is None  # after shutdown


def test_send_false_builds_events_but_sends_nothing(capture_server: CaptureServer) -> None:
    seen: list[str] = []

    def before_send(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event["event"])
        return event

    client = Client("phc_x", host=capture_server.url, send=False, before_send=before_send)
    assert client.capture("built", distinct_id="u") is not None
    client.flush(2)
    client.shutdown(1)
    assert seen == ["built"]
    assert capture_server.requests == []
