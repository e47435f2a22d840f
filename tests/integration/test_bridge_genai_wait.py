"""``posthog-otel bridge`` (a real subprocess on 127.0.0.1) holding a ``$ai_generation`` that
arrived without its messages until the GenAI content log records sent after its span come
(``--genai-log-wait``), delivering to a loopback capture server. The OTLP bodies are built with
opentelemetry-proto's classes, the way a Collector's ``otlphttp`` exporter sends them: traces
and logs in separate requests, in either order."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from posthog_otel.testing.capture_server import CaptureServer
from tests.support.bridge_proc import bridge_process
from tests.support.genai_otlp import GenAiCall
from tests.support.waiting import wait_for_events, wait_until

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _post(url: str, signal: str, body: bytes) -> None:
    response = requests.post(f"{url}/v1/{signal}", data=body, headers=PROTOBUF, timeout=10)
    assert response.status_code == 200, response.text


def _generations(server: CaptureServer, user: str) -> list[dict[str, Any]]:
    return [e for e in server.named("$ai_generation") if e["distinct_id"] == user]


def _one_generation(server: CaptureServer, user: str, timeout: float = 10.0) -> dict[str, Any]:
    (event,) = wait_for_events(
        server,
        lambda e: e["event"] == "$ai_generation" and e["distinct_id"] == user,
        timeout=timeout,
    )
    return event


def _assert_identity(event: dict[str, Any], user: str) -> None:
    props = event["properties"]
    assert event["distinct_id"] == user
    assert props["$session_id"] == f"session-{user}"
    assert props["plan"] == "pro"
    assert props["service.name"] == "cart-node"
    assert props["$ai_model"] == "gpt-4o-mini" and props["$ai_input_tokens"] == 9


@contextmanager
def _bridge(
    server: CaptureServer, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    environment = {"POSTHOG_HOST": server.url, "POSTHOG_API_KEY": "phc_wait", **(env or {})}
    with bridge_process(*args, env=environment, stop_timeout=20) as running:
        yield running


@pytest.fixture(scope="module")
def posthog() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


@pytest.fixture(scope="module")
def bridge(posthog: CaptureServer) -> Iterator[str]:
    """Waits 3 s for late records."""
    with _bridge(posthog, "--genai-log-wait", "3") as (url, _):
        yield url


def _stats(url: str) -> dict[str, Any]:
    body: dict[str, Any] = requests.get(f"{url}/healthz", timeout=5).json()
    return body


def test_records_after_the_span_reach_its_generation(bridge: str, posthog: CaptureServer) -> None:
    call = GenAiCall(f"user-{uuid.uuid4()}")
    _post(bridge, "traces", call.traces())
    time.sleep(0.5)  # another Collector batch, later
    assert _generations(posthog, call.user) == []  # held, not sent without its messages
    _post(bridge, "logs", call.logs())
    event = _one_generation(posthog, call.user, timeout=2.5)  # at once, not when the wait ends
    _assert_identity(event, call.user)
    props = event["properties"]
    assert props["$ai_input"] == [{"role": "user", "content": "Summarise my cart"}]
    assert props["$ai_output_choices"] == [
        {"role": "assistant", "content": [{"type": "text", "text": "3 items, 42 EUR"}]}
    ]
    assert props["$ai_trace_id"] == call.trace_id.hex()
    time.sleep(3.5)  # past the wait: sent once only
    assert len(_generations(posthog, call.user)) == 1
    assert [e for e in posthog.events if e["distinct_id"] == call.user] == [event]
    assert _stats(bridge)["ai_held_joined"] >= 1


def test_a_details_record_after_the_span_reaches_its_generation(
    bridge: str, posthog: CaptureServer
) -> None:
    call = GenAiCall(f"user-{uuid.uuid4()}")
    _post(bridge, "traces", call.traces())
    _post(bridge, "logs", call.details_logs())
    event = _one_generation(posthog, call.user, timeout=2.5)
    _assert_identity(event, call.user)
    assert event["properties"]["$ai_input"] == [{"role": "user", "content": "Summarise my cart"}]
    assert event["properties"]["$ai_output_choices"][0]["content"] == [
        {"type": "text", "text": "3 items, 42 EUR"}
    ]


def test_records_that_never_come_cost_only_the_wait(bridge: str, posthog: CaptureServer) -> None:
    call = GenAiCall(f"user-{uuid.uuid4()}")
    before = _stats(bridge)["ai_held_expired"]
    started = time.monotonic()
    _post(bridge, "traces", call.traces())
    event = _one_generation(posthog, call.user, timeout=10)
    assert time.monotonic() - started >= 2.9  # held for the wait (3 s)
    _assert_identity(event, call.user)
    assert "$ai_input" not in event["properties"]
    assert "$ai_output_choices" not in event["properties"]
    assert _stats(bridge)["ai_held_expired"] == before + 1
    # records arriving after the wait are not events and do not resend it
    _post(bridge, "logs", call.logs())
    time.sleep(1.0)
    assert [e for e in posthog.events if e["distinct_id"] == call.user] == [event]


def test_records_before_the_span_are_joined_without_waiting(
    bridge: str, posthog: CaptureServer
) -> None:
    call = GenAiCall(f"user-{uuid.uuid4()}")
    _post(bridge, "logs", call.details_logs())
    started = time.monotonic()
    _post(bridge, "traces", call.traces())
    event = _one_generation(posthog, call.user, timeout=2.5)
    assert time.monotonic() - started < 2.5  # complete: not held
    _assert_identity(event, call.user)
    assert event["properties"]["$ai_input"] == [{"role": "user", "content": "Summarise my cart"}]


def test_privacy_mode_holds_nothing_and_adds_no_content(posthog: CaptureServer) -> None:
    call = GenAiCall(f"user-{uuid.uuid4()}")
    env = {"POSTHOG_OTEL_AI_PRIVACY_MODE": "true"}
    with _bridge(posthog, "--genai-log-wait", "30", env=env) as (url, _):
        started = time.monotonic()
        _post(url, "traces", call.traces())
        event = _one_generation(posthog, call.user, timeout=5)
        assert time.monotonic() - started < 5  # not held for the 30 s wait
        _post(url, "logs", call.logs())
        time.sleep(1.0)
        stats = _stats(url)
    _assert_identity(event, call.user)
    assert "$ai_input" not in event["properties"]
    assert "$ai_output_choices" not in event["properties"]
    assert [e for e in posthog.events if e["distinct_id"] == call.user] == [event]
    assert stats["ai_events_held"] == 0


def test_wait_zero_holds_nothing(posthog: CaptureServer) -> None:
    call = GenAiCall(f"user-{uuid.uuid4()}")
    with _bridge(posthog, env={"POSTHOG_OTEL_GENAI_LOG_WAIT": "0"}) as (url, _):
        _post(url, "traces", call.traces())
        event = _one_generation(posthog, call.user, timeout=5)
        assert _stats(url)["ai_events_held"] == 0
    assert "$ai_input" not in event["properties"]


def test_a_full_hold_sends_the_oldest_at_once_and_shutdown_sends_the_rest(
    posthog: CaptureServer,
) -> None:
    """``--max-queue-size 8`` holds at most 2 events (a quarter of the queue); the wait is long,
    so only overflow and shutdown can send them."""
    calls = [GenAiCall(f"user-{uuid.uuid4()}") for _ in range(3)]
    with _bridge(posthog, "--genai-log-wait", "60", "--max-queue-size", "8") as (url, proc):
        for call in calls[:2]:
            _post(url, "traces", call.traces())
        time.sleep(1.0)
        assert all(_generations(posthog, call.user) == [] for call in calls)
        assert _stats(url)["ai_held_now"] == 2
        _post(url, "traces", calls[2].traces())  # over the bound: the oldest goes now
        oldest = _one_generation(posthog, calls[0].user, timeout=5)
        _assert_identity(oldest, calls[0].user)
        stats = _stats(url)
        assert stats["ai_held_overflow"] == 1 and stats["ai_held_now"] == 2
        assert _generations(posthog, calls[1].user) == []
        # records for a held one still join it (and send it)
        _post(url, "logs", calls[2].details_logs())
        wait_until(lambda: _generations(posthog, calls[2].user), timeout=5)
        assert _generations(posthog, calls[1].user) == []
        started = time.monotonic()
    # left the block: SIGTERM, the bridge drains; the held event is sent, not dropped
    assert proc.returncode is not None and time.monotonic() - started < 20
    (rest,) = _generations(posthog, calls[1].user)
    _assert_identity(rest, calls[1].user)
    assert "$ai_input" not in rest["properties"]
    (joined,) = _generations(posthog, calls[2].user)
    assert joined["properties"]["$ai_input"] == [{"role": "user", "content": "Summarise my cart"}]
    for call in calls:
        assert len(_generations(posthog, call.user)) == 1


def test_two_workers_never_lose_or_repeat_a_held_generation(posthog: CaptureServer) -> None:
    """With ``--workers 2`` a span and its records may reach different processes (each
    connection goes to either): those are not joined (documented), but every generation is
    still sent once, with its person, after the wait at most."""
    calls = [GenAiCall(f"user-{uuid.uuid4()}") for _ in range(12)]
    with _bridge(posthog, "--genai-log-wait", "2", "--workers", "2") as (url, _):
        for call in calls:  # a new connection for each request
            _post(url, "traces", call.traces())
        for call in calls:
            _post(url, "logs", call.details_logs())
        for call in calls:
            _one_generation(posthog, call.user, timeout=15)
        time.sleep(2.5)  # past every wait: nothing more comes
    for call in calls:
        (event,) = _generations(posthog, call.user)
        _assert_identity(event, call.user)
