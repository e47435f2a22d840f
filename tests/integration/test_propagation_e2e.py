"""End to end across real processes: a browser request -> service A -> service B.

Every service is a real subprocess on 127.0.0.1 behind contrib's WSGI middleware, configured
only by ``OTEL_PROPAGATORS`` (our ``posthog`` entry point). Service A gets posthog-js tracing
headers, adds tags of every JSON type and calls B with ``requests``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.procs import ROOT
from tests.support.propagation_service import TAGS

BROWSER = {
    "X-POSTHOG-DISTINCT-ID": "browser-user@example.com",
    "X-POSTHOG-SESSION-ID": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    "X-POSTHOG-WINDOW-ID": "0190a1b2-ffff-7e5f-8a9b-0c1d2e3f4a5b",
}
WITH_POSTHOG = "tracecontext,baggage,posthog"


class Service:
    def __init__(self, propagators: str, contrib: bool = False) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "OTEL_PROPAGATORS": propagators,
            "WITH_CONTRIB": "1" if contrib else "0",
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "support" / "propagation_service.py")],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait(self) -> Service:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise AssertionError(f"service did not start: {line}{self.proc.communicate()[1]}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def get(self, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(self.url + path, headers=headers or {})
        with urllib.request.urlopen(request, timeout=20) as response:
            result: dict[str, Any] = json.loads(response.read())
        assert "error" not in result, result
        return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, Service]]:
    started = {
        "b": Service(WITH_POSTHOG),
        "b_stock": Service("tracecontext,baggage"),
        "a": Service(WITH_POSTHOG),
        "a_contrib": Service(WITH_POSTHOG, contrib=True),
    }
    try:
        yield {name: service.wait() for name, service in started.items()}
    finally:
        for service in started.values():
            service.stop()


def _call(a: Service, b: Service, alias: str | None = None) -> dict[str, Any]:
    path = "/call?to=" + quote(b.url + "/report", safe="")
    if alias:
        path += "&as=" + alias
    return a.get(path, BROWSER)


def _members(header: str) -> list[str]:
    return [m.split("=", 1)[0].strip() for m in header.split(",") if m.strip()]


@pytest.mark.parametrize("a_name", ["a", "a_contrib"])
def test_identity_session_window_and_tags_arrive_in_b(
    services: dict[str, Service], a_name: str
) -> None:
    result = _call(services[a_name], services["b"])

    seen = result["seen"]  # A's view: extracted from the posthog-js headers
    assert "PosthogPropagator" in seen["propagators"]
    assert seen["scope"]["distinct_id"] == BROWSER["X-POSTHOG-DISTINCT-ID"]
    assert seen["scope"]["fresh"] is True

    b = result["answer"]
    assert "PosthogPropagator" in b["propagators"]  # loaded from OTEL_PROPAGATORS
    scope = b["scope"]
    assert scope["distinct_id"] == BROWSER["X-POSTHOG-DISTINCT-ID"]
    assert scope["session_id"] == BROWSER["X-POSTHOG-SESSION-ID"]
    assert scope["window_id"] == BROWSER["X-POSTHOG-WINDOW-ID"]
    assert scope["tags"] == TAGS
    assert all(type(scope["tags"][k]) is type(v) for k, v in TAGS.items())

    headers = b["headers"]
    assert headers["HTTP_X_POSTHOG_DISTINCT_ID"] == BROWSER["X-POSTHOG-DISTINCT-ID"]
    assert headers["HTTP_X_POSTHOG_SESSION_ID"] == BROWSER["X-POSTHOG-SESSION-ID"]
    keys = _members(headers["HTTP_BAGGAGE"])
    assert len(keys) == len(set(keys)), f"duplicate baggage members: {keys}"
    assert sum(k.startswith("posthog.tag.") for k in keys) == len(TAGS)
    # B's OpenTelemetry baggage keeps only non-PostHog members: the scope is the one copy.
    assert not any(k.startswith("posthog.") for k in b["baggage"])
    if a_name == "a_contrib":  # contrib injects the stock baggage too: other members go
        assert b["baggage"]["other.member"] == "kept value"
        assert "HTTP_TRACEPARENT" in headers


@pytest.mark.parametrize("a_name", ["a", "a_contrib"])
def test_nothing_posthog_goes_to_a_public_host(services: dict[str, Service], a_name: str) -> None:
    # B is reached as api.example.com (resolved to 127.0.0.1 inside A only).
    result = _call(services[a_name], services["b"], alias="api.example.com")

    b = result["answer"]
    assert b["headers"]["HTTP_HOST"].startswith("api.example.com:")
    assert b["scope"] is None
    assert not any(k.startswith("HTTP_X_POSTHOG") for k in b["headers"])
    assert "posthog." not in b["headers"].get("HTTP_BAGGAGE", "")
    if a_name == "a_contrib":  # while the other members still go
        assert b["baggage"] == {"other.member": "kept value"}
        assert "HTTP_TRACEPARENT" in b["headers"]


def test_a_stock_receiver_reads_our_members(services: dict[str, Service]) -> None:
    result = _call(services["a_contrib"], services["b_stock"])

    b = result["answer"]
    assert b["propagators"] == ["TraceContextTextMapPropagator", "W3CBaggagePropagator"]
    entries = b["baggage"]
    assert entries["posthog.distinct_id"] == BROWSER["X-POSTHOG-DISTINCT-ID"]
    assert entries["posthog.session_id"] == BROWSER["X-POSTHOG-SESSION-ID"]
    assert entries["posthog.window_id"] == BROWSER["X-POSTHOG-WINDOW-ID"]
    # Strings arrive as themselves (spaces, +, %, ;, ",", =, unicode survive stock decoding),
    # other JSON values as their JSON text.
    for key in ("plan", "spaces", "plus", "percent", "semicolon", "comma", "equals", "unicode"):
        assert entries[f"posthog.tag.{key}"] == TAGS[key]
    assert entries["posthog.tag.key with space"] == "v"
    assert entries["posthog.tag.ключ"] == "значение"
    assert entries["posthog.tag.int"] == "42"
    assert entries["posthog.tag.number_string"] == '"42"'
    assert json.loads(entries["posthog.tag.dict"]) == TAGS["dict"]
    assert entries["other.member"] == "kept value"


def test_inbound_headers_only_when_nothing_else(services: dict[str, Service]) -> None:
    # posthog-js headers straight to B: the scope has them and no tags.
    b = services["b"].get("/report", BROWSER)
    assert b["scope"]["distinct_id"] == BROWSER["X-POSTHOG-DISTINCT-ID"]
    assert b["scope"]["window_id"] == BROWSER["X-POSTHOG-WINDOW-ID"]
    assert b["scope"]["tags"] == {}
    assert services["b"].get("/report")["scope"] is None


def test_a_caller_cannot_set_reserved_properties(services: dict[str, Service]) -> None:
    hostile = ",".join(
        [
            "posthog.tag.%24set=%7B%22is_admin%22%3Atrue%7D",
            "posthog.tag.%24groups=%7B%22company%22%3A%22evil%22%7D",
            "posthog.tag.%24session_id=forged",
            "posthog.tag.%24process_person_profile=true",
            "posthog.tag.%24trace_id=abc",
            "posthog.tag.plan=pro",
        ]
    )
    scope = services["b"].get("/report", {**BROWSER, "baggage": hostile})["scope"]
    assert scope["tags"] == {"plan": "pro"}  # every "$" key dropped, the ordinary tag kept
    assert scope["distinct_id"] == BROWSER["X-POSTHOG-DISTINCT-ID"]
