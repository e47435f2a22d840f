"""The module-level API: configured by module attributes as posthog-python's is, the same
events from ``posthog.capture(...)`` and ``posthog_otel.capture(...)``, and errors raised only
in debug mode."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import posthog
import pytest

import posthog_otel
from posthog_otel import global_client
from posthog_otel.testing.capture_server import CaptureServer

from .harness import API_KEY, normalise

SETTINGS = (
    "api_key",
    "project_api_key",
    "host",
    "sync_mode",
    "super_properties",
    "before_send",
    "disabled",
    "debug",
    "disable_geoip",
)


@pytest.fixture
def modules() -> Iterator[list[tuple[ModuleType, CaptureServer]]]:
    saved = {m: {n: getattr(m, n) for n in SETTINGS} for m in (posthog, posthog_otel)}
    previous_ours = global_client.set_client(None)
    previous_theirs, posthog.default_client = posthog.default_client, None
    with CaptureServer() as theirs_server, CaptureServer() as ours_server:
        yield [(posthog, theirs_server), (posthog_otel, ours_server)]
        for module in (posthog, posthog_otel):
            client = module.default_client
            if client is not None:
                client.shutdown()
    for module, values in saved.items():
        for name, value in values.items():
            setattr(module, name, value)
    global_client.set_client(previous_ours)
    posthog.default_client = previous_theirs


def _sent(server: CaptureServer, ours: bool) -> list[dict[str, Any]]:
    return [
        normalise(e, ours=ours)
        for r in server.requests
        if isinstance(r.body, dict)
        for e in r.body["batch"]
    ]


def _configure(module: ModuleType, server: CaptureServer, **settings: Any) -> None:
    module.host = server.url
    module.sync_mode = True
    for name, value in settings.items():
        setattr(module, name, value)


@pytest.mark.parametrize(
    "keys",
    [
        {"api_key": API_KEY},
        {"project_api_key": API_KEY},
        {"project_api_key": API_KEY, "api_key": "phc_other"},
        {"project_api_key": "  ", "api_key": API_KEY},
    ],
    ids=repr,
)
def test_module_attributes_configure_the_default_client(
    modules: list[tuple[ModuleType, CaptureServer]], keys: dict[str, str]
) -> None:
    results = []
    for module, server in modules:
        _configure(module, server, super_properties={"app": "shop"}, disable_geoip=False, **keys)
        module.capture("ev", distinct_id="u", properties={"a": 1})
        module.set(distinct_id="u", properties={"plan": "pro"})
        module.group_identify("company", "c1", {"n": 1}, distinct_id="u")
        module.alias("anon", "u")
        module.flush()
        results.append(_sent(server, module is posthog_otel))
        assert [r.body["api_key"] for r in server.requests] == [API_KEY] * 4
    assert results[0] == results[1]


def test_a_blank_key_makes_a_disabled_default_client(
    modules: list[tuple[ModuleType, CaptureServer]],
) -> None:
    for module, server in modules:
        _configure(module, server, api_key="  ")
        assert module.capture("ev", distinct_id="u") is None
        assert module.setup().disabled
        assert server.requests == []


def test_settings_assigned_after_first_use_apply(
    modules: list[tuple[ModuleType, CaptureServer]],
) -> None:
    results = []
    for module, server in modules:
        _configure(module, server, api_key=API_KEY)
        module.capture("before", distinct_id="u")

        def rename(event: dict[str, Any]) -> dict[str, Any]:
            event["event"] = "renamed"
            return event

        module.before_send = rename
        module.capture("after", distinct_id="u")
        module.disabled = True
        dropped = module.capture("while_disabled", distinct_id="u")
        module.disabled = False
        module.capture("enabled_again", distinct_id="u")
        results.append(([e["event"] for e in _sent(server, False)], dropped))
        assert module.default_client is module.setup()
    assert results[0] == results[1] == (["before", "renamed", "renamed"], None)


def test_module_flush_takes_timeout_seconds(
    modules: list[tuple[ModuleType, CaptureServer]],
) -> None:
    for module, server in modules:
        _configure(module, server, api_key=API_KEY)
        module.capture("ev", distinct_id="u")
        module.flush(timeout_seconds=2)
        module.flush(2)
        assert len(server.requests) == 1


@pytest.mark.parametrize("debug", [False, True])
def test_errors_are_raised_only_in_debug_mode(
    modules: list[tuple[ModuleType, CaptureServer]], debug: bool
) -> None:
    outcomes = []
    for module, server in modules:
        _configure(module, server, api_key=API_KEY, debug=debug)
        try:
            outcomes.append(module.capture("ev", distinct_id="u", properties=5))
        except TypeError:
            outcomes.append("raised")
    assert outcomes == (["raised", "raised"] if debug else [None, None])


def test_a_user_configured_posthog_logger_sees_ours(
    modules: list[tuple[ModuleType, CaptureServer]], caplog: pytest.LogCaptureFixture
) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("posthog")
    handler = Keep(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        for module, server in modules:
            _configure(module, server, api_key=API_KEY)
            module.group_identify("", "c1")  # dropped with a warning by both
    finally:
        logger.removeHandler(handler)
    assert [r.name for r in records] == ["posthog", "posthog.otel"]
    assert all("group_type" in r.getMessage() for r in records)
