"""Process lifecycle: pre-forking servers, worker processes, multiprocessing, SIGTERM mid-burst.

Real processes against a loopback capture server, and no explicit ``flush()``/``shutdown()``
in any app: delivery at exit is the library's job. In every case, each event whose uuid the
app handed out before it stopped arrives, and none arrives twice. Every wait has a timeout,
so a hang fails the test instead of stalling the run.

- gunicorn ``--preload -w 4`` (the client is built in the master, then the workers fork);
- uvicorn ``--workers 2`` (workers are spawned and build their own client);
- ``multiprocessing`` with the fork, spawn and forkserver start methods: ``Process``
  children and ``Pool`` workers that just return (fork/forkserver children leave through
  ``os._exit()``, which skips ``atexit``);
- SIGTERM to the server while a burst of requests is in flight.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from posthog_otel.testing.capture_server import CaptureServer
from tests.support.procs import BIN, ROOT, free_port, wait_until_up
from tests.support.waiting import wait_until

EXIT_TIMEOUT = 30.0


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``args`` in a new session, so that its workers can be killed with it."""
    return subprocess.Popen(
        args,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGKILL the process group we started (the server and its workers); collect output."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return proc.communicate(timeout=10)


@dataclass
class Served:
    """What the app answered: uuid -> (pid, distinct id sent)."""

    events: dict[str, tuple[int, str]] = field(default_factory=dict)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, uuid: str, pid: int, distinct_id: str) -> None:
        with self.lock:
            assert uuid not in self.events
            self.events[uuid] = (pid, distinct_id)

    def __len__(self) -> int:
        with self.lock:
            return len(self.events)


def _hit(session: requests.Session, url: str, served: Served, name: str) -> bool:
    try:
        response = session.get(url, headers={"X-POSTHOG-DISTINCT-ID": name}, timeout=10)
    except requests.RequestException:
        with served.lock:
            served.errors += 1
        return False
    if response.status_code != 200:
        with served.lock:
            served.errors += 1
        return False
    answer = response.json()
    served.add(answer["uuid"], answer["pid"], name)
    return True


def _requests(url: str, served: Served, total: int, threads: int = 8) -> None:
    """``total`` requests from ``threads`` threads; every one must succeed."""

    def worker(n: int) -> None:
        with requests.Session() as session:
            for i in range(n, total, threads):
                assert _hit(session, url, served, f"visitor-{i}")

    pool = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(60)
        assert not thread.is_alive()


def _burst_then_sigterm(proc: subprocess.Popen[str], url: str, served: Served) -> int:
    """Requests from 8 threads; SIGTERM once 100 more were answered; returns answered then."""
    stop = threading.Event()
    baseline = len(served)

    def worker(n: int) -> None:
        failures = 0
        i = 0
        with requests.Session() as session:
            while not stop.is_set() and failures < 3:
                ok = _hit(session, url, served, f"burst-{n}-{i}")
                failures = 0 if ok else failures + 1
                i += 1

    pool = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(8)]
    for thread in pool:
        thread.start()
    wait_until(
        lambda: len(served) >= baseline + 100,
        timeout=30,
        interval=0.005,
        what="the burst to get going",
    )
    at_signal = len(served)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        tree = subprocess.run(
            ["ps", "-o", "pid,ppid,stat,wchan:20,cmd", "-g", str(proc.pid)],
            capture_output=True,
            text=True,
        ).stdout
        _, err = kill_group(proc)
        stop.set()
        raise AssertionError(
            f"no exit within {EXIT_TIMEOUT} s of SIGTERM:\n{tree}\n{err[-5000:]}"
        ) from None
    stop.set()
    for thread in pool:
        thread.join(30)
        assert not thread.is_alive()
    assert proc.returncode == 0, err[-3000:]
    return at_signal


def _wait_for_uuids(server: CaptureServer, wanted: set[str], timeout: float = 20.0) -> None:
    def missing() -> set[str]:
        with server._lock:
            return wanted - server.uuids

    wait_until(
        lambda: not missing(),
        timeout=timeout,
        what=lambda: f"{len(wanted)} events ({len(missing())} never arrived)",
    )


def _check_delivery(server: CaptureServer, served: Served) -> dict[str, int]:
    _wait_for_uuids(server, set(served.events))
    time.sleep(0.3)  # anything sent late (a duplicate) would land now
    events = server.events
    assert server.event_count == len(server.uuids), "an event arrived twice"
    by_uuid = {e["uuid"]: e for e in events}
    for uuid, (pid, distinct_id) in served.events.items():
        event = by_uuid[uuid]
        assert event["distinct_id"] == distinct_id
        assert event["properties"]["pid"] == pid
    return collections.Counter(e["event"] for e in events)


def _serve_a_burst_then_stop(
    proc: subprocess.Popen[str], port: int, server: CaptureServer
) -> tuple[Served, dict[str, int]]:
    """200 requests, then a burst with SIGTERM in the middle; checks delivery of every
    answered request's event; returns what was served and the event counts by name."""
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/healthz", proc)
        served = Served()
        _requests(url + "/order", served, total=200)
        at_signal = _burst_then_sigterm(proc, url + "/order", served)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    names = _check_delivery(server, served)
    assert len(served.events) >= at_signal >= 300
    _served_match(names["request_served"], served)
    return served, names


def _uvicorn(app: str, port: int, *options: str) -> list[str]:
    """The command line of ``uvicorn`` serving ``app`` on 127.0.0.1:``port``."""
    args = [str(BIN / "uvicorn"), app, "--host", "127.0.0.1", "--port", str(port)]
    return [*args, *options, "--log-level", "warning"]


def _served_match(captured: int, served: Served) -> None:
    """Every answered request's event arrived; beyond those, only requests that captured and
    then lost their answer to the shutdown (the client saw an error) may have sent one."""
    assert len(served.events) <= captured <= len(served.events) + served.errors


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with CaptureServer() as capture:
        yield capture


def _env(server: CaptureServer) -> dict[str, str]:
    return {"POSTHOG_API_KEY": "phc_lifecycle", "POSTHOG_HOST": server.url}


def test_gunicorn_preload_four_workers_and_sigterm_mid_burst(server: CaptureServer) -> None:
    port = free_port()
    proc = start(
        [
            str(BIN / "gunicorn"),
            "--preload",
            "--workers",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "15",
            "--log-level",
            "warning",
            "tests.reliability.apps.wsgi_app:app",
        ],
        _env(server),
    )
    served, names = _serve_a_burst_then_stop(proc, port, server)
    assert names["app_loaded"] == 1  # captured once in the master; no worker re-sent it
    (loaded,) = server.named("app_loaded")
    worker_pids = {pid for pid, _ in served.events.values()}
    assert loaded["properties"]["pid"] not in worker_pids
    assert len(worker_pids) >= 2  # the load was spread over forked workers


def test_uvicorn_two_workers_and_sigterm_mid_burst(server: CaptureServer) -> None:
    port = free_port()
    proc = start(
        _uvicorn(
            "tests.reliability.apps.asgi_app:app",
            port,
            "--workers",
            "2",
            # keep-alive clients that never stop can hold a worker's graceful shutdown forever
            "--timeout-graceful-shutdown",
            "5",
        ),
        _env(server),
    )
    served, _ = _serve_a_burst_then_stop(proc, port, server)
    assert len({pid for pid, _ in served.events.values()}) == 2


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing_children_deliver_without_flushing(
    server: CaptureServer, method: str
) -> None:
    env = {**os.environ, **_env(server), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.apps.mp_app", method],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=EXIT_TIMEOUT * 2,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    expected = set(result["parent"]) | set(result["children"])
    assert len(expected) == 2 + 3 * 25 + 30
    _wait_for_uuids(server, expected)
    time.sleep(0.3)
    assert server.event_count == len(server.uuids) == len(expected)  # nothing twice, nothing else
    names = collections.Counter(e["event"] for e in server.events)
    assert names == {
        "parent_before": 1,
        "parent_after": 1,
        "in_process_child": 75,
        "in_pool_task": 30,
    }
    assert len(result["pids"]) >= 4  # 3 Process children + at least one pool worker


_SCRIPT_WITH_SIGTERM_HANDLER = """
import signal, sys, time
from posthog_otel import Client

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # what a well-behaved worker does
client = Client(flush_interval=0.05, flush_at=50, shutdown_timeout=5)
i = 0
while True:
    uuid = client.capture("tick", distinct_id="worker", properties={"i": i})
    print(uuid, flush=True)
    i += 1
    time.sleep(0.0005)
"""


def test_sigterm_during_a_burst_in_a_plain_worker(server: CaptureServer) -> None:
    proc = start([sys.executable, "-c", _SCRIPT_WITH_SIGTERM_HANDLER], _env(server))
    try:
        assert proc.stdout is not None
        printed: list[str] = []
        # Read as fast as the worker prints (no polling interval): the signal must land while
        # the worker is still mid-burst, with few lines not yet read.
        deadline = time.monotonic() + 20
        while len(printed) < 500:
            assert time.monotonic() < deadline, "the worker did not start capturing"
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            printed.append(line.strip())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=EXIT_TIMEOUT)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    assert proc.returncode == 0, err
    handed_out = set(printed) | {line.strip() for line in out.splitlines() if line.strip()}
    _wait_for_uuids(server, handed_out)
    time.sleep(0.3)
    assert server.event_count == len(server.uuids)  # nothing twice
    # The signal may land between a capture() and the print of its uuid: that one event is
    # delivered without having been handed out. It must be the last one captured.
    extra = [e for e in server.events if e["uuid"] not in handed_out]
    assert len(extra) <= 1, extra
    if extra:
        assert extra[0]["properties"]["i"] == len(handed_out)


@pytest.mark.parametrize(
    "app",
    [
        "tests.reliability.apps.fastapi_shutdown_app:app",
        "tests.reliability.apps.django_shutdown_app:application",
    ],
    ids=["fastapi", "django"],
)
def test_uvicorn_stop_delivers_queued_spans_and_events_at_lifespan_shutdown(
    server: CaptureServer, app: str
) -> None:
    """uvicorn re-raises SIGTERM once stopped, so ``atexit`` never runs in its process.

    With ``flush_interval=60`` nothing leaves on its own: what arrives was flushed at lifespan
    shutdown (span queue first, then the event queue) by the ASGI middleware (FastAPI) or by
    the lifespan answers the Django instrumentor adds to Django's ``ASGIHandler``.
    """
    port = free_port()
    proc = start(_uvicorn(app, port), _env(server))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url + "/healthz", proc)
        answers = [
            requests.get(url + "/order", params={"visitor": f"v{i}"}, timeout=10).json()
            for i in range(5)
        ]
        time.sleep(0.3)
        assert server.event_count == 0  # still queued
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=EXIT_TIMEOUT)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    assert proc.returncode in (0, -signal.SIGTERM), err[-3000:]
    _wait_for_uuids(server, {a["uuid"] for a in answers}, timeout=10)
    by_name = collections.defaultdict(list)
    for event in server.events:
        by_name[event["event"]].append(event["distinct_id"])
    assert sorted(by_name["order_placed"]) == [f"v{i}" for i in range(5)]
    assert sorted(by_name["checkout"]) == [f"v{i}" for i in range(5)]
