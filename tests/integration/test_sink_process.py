"""``posthog-otel sink`` as a real command: start, serve, share a database, stop."""

from __future__ import annotations

import gzip
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import requests

from posthog_otel.sink import EventStore
from tests.support.sink_helpers import batch, event, start_sink_process


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=10)
    return process.returncode, out


def test_the_command_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "cli.sqlite3"
    process, url = start_sink_process(db)
    try:
        assert url.startswith("http://127.0.0.1:")
        answer = requests.post(url + "/batch/", json=batch(event("from_cli")), timeout=10)
        assert answer.status_code == 200
        health = requests.get(url + "/healthz", timeout=10).json()
        assert health == {"status": "ok", "events": 1, "db": str(db)}
        assert "from_cli" in requests.get(url + "/", timeout=10).text
    finally:
        code, out = _stop(process)
    assert code == 0
    assert "posthog-otel sink stopped" in out
    # the data outlives the process, in WAL mode
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT event FROM events").fetchall() == [("from_cli",)]


def test_clear_errors_for_a_busy_port_and_a_foreign_database(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [
                sys.executable,
                "-m",
                "posthog_otel",
                "sink",
                "--port",
                str(port),
                "--db",
                str(tmp_path / "a.db"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert busy.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    refused = subprocess.run(
        [sys.executable, "-m", "posthog_otel", "sink", "--port", "0", "--db", str(foreign)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2
    assert "not a posthog-otel sink database" in refused.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "posthog_otel", "sink", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "--db" in help_text and "--port" in help_text


def test_two_sink_processes_share_one_database(tmp_path: Path) -> None:
    """Concurrent writers in two processes (and several threads each) lose nothing."""
    db = tmp_path / "shared.sqlite3"
    first, first_url = start_sink_process(db)
    second, second_url = start_sink_process(db)
    sent: list[str] = []
    lock = threading.Lock()
    failures: list[str] = []

    def send(url: str, worker: int) -> None:
        with requests.Session() as session:
            for i in range(10):
                events = [event(f"p{worker}", distinct_id=f"u{i}") for _ in range(5)]
                with lock:
                    sent.extend(e["uuid"] for e in events)
                response = session.post(
                    url + "/batch/",
                    data=gzip.compress(json.dumps(batch(*events)).encode()),
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
                    timeout=30,
                )
                if response.status_code != 200:
                    failures.append(response.text)

    try:
        workers = [
            threading.Thread(target=send, args=(url, n))
            for n, url in enumerate([first_url, second_url] * 3)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert failures == []
        from_first = requests.get(
            first_url + "/api/events", params={"limit": 1000}, timeout=10
        ).json()
        from_second = requests.get(
            second_url + "/api/events", params={"limit": 1000}, timeout=10
        ).json()
    finally:
        _stop(first)
        _stop(second)
    assert from_first["count"] == from_second["count"] == len(sent) == 300
    assert sorted(e["uuid"] for e in from_first["events"]) == sorted(sent)
    store = EventStore(db)
    try:
        assert store.count() == 300
    finally:
        store.close()
