"""Start-up errors of ``posthog-otel``: one accurate line on stderr, exit status 2, no banner."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from posthog_otel.demo.session import _running_sink
from posthog_otel.sink import SinkServer


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "posthog_otel", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "listening" not in result.stdout and "bridge on" not in result.stdout
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_sink_database_in_a_missing_folder(tmp_path: Path) -> None:
    line = _one_line(_cli("sink", "--port", "0", "--db", str(tmp_path / "nope" / "x.db")))
    assert line.startswith("posthog-otel sink: cannot open the database")
    assert "nope" in line


def test_sink_on_an_address_of_another_machine(tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: binding fails locally, no traffic.
    line = _one_line(_cli("sink", "--host", "192.0.2.1", "--db", str(tmp_path / "x.db")))
    assert "192.0.2.1 is not an address of this machine" in line
    assert "another sink" not in line


def test_sink_on_a_busy_port(tmp_path: Path, busy_port: int) -> None:
    line = _one_line(_cli("sink", "--port", str(busy_port), "--db", str(tmp_path / "x.db")))
    assert f"cannot listen on 127.0.0.1:{busy_port}: the port is in use" in line


def test_bridge_on_a_busy_port_says_so_before_any_banner(busy_port: int) -> None:
    line = _one_line(_cli("bridge", "--api-key", "phc_k", "--port", str(busy_port)))
    assert line.startswith(f"posthog-otel bridge: cannot listen on 127.0.0.1:{busy_port}")


class _OtherService(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "events": 3}).encode()  # a health answer, not a sink
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_demo_tells_a_sink_from_another_service(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OtherService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert not _running_sink(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    with SinkServer(port=0, db_path=tmp_path / "s.db") as sink:
        assert _running_sink(sink.url)
