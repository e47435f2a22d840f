"""The sink against DNS rebinding: only its own names are answered; DELETE checks Origin.

``rebind.attacker.example`` resolves to 127.0.0.1 inside the test, as an attacker's name does
after rebinding; a browser page served from it would send that ``Host`` (and ``Origin``).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from posthog_otel.sink import SinkServer
from posthog_otel.sink.hosts import HostGuard
from tests.support.http_echo import loopback_names
from tests.support.procs import free_port, start, stop, wait_until_up

ATTACKER = "rebind.attacker.example"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SinkServer]:
    with (
        SinkServer(port=0, db_path=tmp_path / "sink.sqlite3") as server,
        loopback_names(ATTACKER, "sink.dev.internal"),
    ):
        yield server


def _capture(url: str) -> int:
    body = {"api_key": "phc_x", "batch": [{"event": "e", "distinct_id": "u", "properties": {}}]}
    return requests.post(f"{url}/batch/", json=body, timeout=5).status_code


def test_a_rebinding_name_can_neither_read_nor_clear_events(sink: SinkServer) -> None:
    assert _capture(sink.url) == 200
    through_attacker = f"http://{ATTACKER}:{sink.port}"
    for method, path in (("GET", "/api/events"), ("GET", "/"), ("DELETE", "/api/events")):
        answer = requests.request(method, through_attacker + path, timeout=5)
        assert answer.status_code == 403, (method, path)
        assert answer.json()["code"] == "host_not_allowed"
    assert _capture(through_attacker) == 403
    assert len(sink.events()) == 1  # nothing cleared, nothing added


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "app.localhost", "[::1]", "127.0.0.2"])
def test_local_names_are_answered(sink: SinkServer, host: str) -> None:
    answer = requests.get(
        f"http://127.0.0.1:{sink.port}/api/events",
        headers={"Host": f"{host}:{sink.port}"},
        timeout=5,
    )
    assert answer.status_code == 200


def test_delete_needs_the_sinks_own_origin(sink: SinkServer) -> None:
    _capture(sink.url)
    foreign = requests.delete(
        f"{sink.url}/api/events", headers={"Origin": f"http://{ATTACKER}"}, timeout=5
    )
    assert foreign.status_code == 403 and foreign.json()["code"] == "origin_not_allowed"
    for origin in ("null", "file://"):
        refused = requests.delete(f"{sink.url}/api/events", headers={"Origin": origin}, timeout=5)
        assert refused.status_code == 403
    assert len(sink.events()) == 1
    own = requests.delete(f"{sink.url}/api/events", headers={"Origin": sink.url}, timeout=5)
    assert own.status_code == 200 and own.json() == {"deleted": 1}


def test_a_browser_app_on_another_local_port_can_still_capture(sink: SinkServer) -> None:
    body = {"api_key": "phc_x", "batch": [{"event": "e", "distinct_id": "u", "properties": {}}]}
    answer = requests.post(
        f"{sink.url}/batch/", json=body, headers={"Origin": "http://localhost:3000"}, timeout=5
    )
    assert answer.status_code == 200


def test_allow_host_from_the_command_line(tmp_path: Path) -> None:
    port = free_port()
    proc = start(
        [
            sys.executable,
            "-m",
            "posthog_otel",
            "sink",
            "--port",
            str(port),
            "--db",
            str(tmp_path / "cli.sqlite3"),
            "--allow-host",
            "sink.dev.internal",
        ],
        {},
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/api/events", proc)
        with loopback_names("sink.dev.internal", ATTACKER):
            allowed = requests.get(f"http://sink.dev.internal:{port}/api/events", timeout=5)
            refused = requests.get(f"http://{ATTACKER}:{port}/api/events", timeout=5)
        assert allowed.status_code == 200 and refused.status_code == 403
    finally:
        stop(proc)


@pytest.mark.parametrize(
    ("bound", "header", "allowed"),
    [
        ("127.0.0.1", "127.0.0.1:8010", True),
        ("127.0.0.1", "10.0.0.5:8010", False),  # an IP, but not ours while bound to loopback
        ("0.0.0.0", "10.0.0.5:8010", True),  # bound everywhere: any address is ours
        ("0.0.0.0", "evil.example:8010", False),
        ("::", "[fe80::1]:8010", True),
        ("127.0.0.1", "", False),
        ("127.0.0.1", "LOCALHOST.:8010", True),
        ("127.0.0.1", "localhost.attacker.example", False),
    ],
)
def test_host_rule(bound: str, header: str, allowed: bool) -> None:
    assert HostGuard(bound).allows_host(header) is allowed


def test_the_sink_refuses_an_unknown_host_before_reading_a_body(sink: SinkServer) -> None:
    with socket.create_connection(("127.0.0.1", sink.port), timeout=5) as raw:
        raw.sendall(
            f"POST /batch/ HTTP/1.1\r\nHost: {ATTACKER}\r\nContent-Length: 100000000\r\n\r\n".encode()
        )
        answer = raw.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 403")
