"""Real servers under load: what a user of each integration sees, per request.

    python -m benchmarks.servers                     # Flask and FastAPI, 3 repetitions
    BENCH_SECONDS=5 BENCH_REPEAT=1 python -m benchmarks.servers

Flask under gunicorn (one sync worker) and FastAPI under uvicorn (one worker), both on
127.0.0.1, each variant of :mod:`benchmarks._server_apps` in a fresh server process: ``bare``,
``contrib``, ``ours`` (contrib + posthog-otel), ``peer`` (posthog-python's middleware) and
``contrib_peer`` (contrib + posthog-python). A load generator process (:mod:`benchmarks._load`)
keeps 8 connections busy for a warm-up and then a timed window. Reported per variant, as the
median of the repetitions with their spread: requests/s, p50 and p99 latency, CPU per request of
the whole serving process tree (every thread, from ``/proc``), RSS of the serving process, and
events per request received by a capture server in its own process (counted after the server
is stopped, so what the clients flush at exit is included). GC stays on everywhere.

Events per request: the route captures one event; posthog-otel also turns each identified
request's root span into an event (``capture_spans="roots"``, the default), so ``ours`` sends
two per request and ``peer`` one. ``ours_1ev`` is ``ours`` with ``capture_spans="none"``: one
event per request, like posthog-python. Both comparisons are printed.

Targets (same run): added CPU/request over contrib <= 0.8x posthog-python's (contrib_peer over
contrib); p99 of ``ours`` <= 1.1x ``contrib_peer``'s; RSS of ``ours`` <= ``contrib`` + 10 MiB.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import AbstractContextManager
from pathlib import Path

from ._loopback import url_process
from ._server_apps import VARIANTS

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 8
_TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        pids.extend(_tree(int(child)))
    return pids


def _cpu_seconds(pid: int) -> float:
    total = 0.0
    for one in _tree(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
    return total


def _rss_mib(pid: int) -> float:
    """The largest RSS in the tree: the worker that serves (gunicorn's master is small)."""
    best = 0.0
    for one in _tree(pid):
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    best = max(best, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return best


def _capture_server() -> AbstractContextManager[str]:
    return url_process([sys.executable, "-m", "posthog_otel.testing.capture_server"])


def _events(url: str) -> int:
    with urllib.request.urlopen(url + "/_stats", timeout=10) as response:
        return int(json.loads(response.read())["events"])


def _command(framework: str, port: int) -> list[str]:
    if framework == "flask":
        return [
            sys.executable, "-m", "gunicorn", "-k", "sync", "-w", "1",
            "-b", f"127.0.0.1:{port}", "benchmarks._server_apps:flask_app()",
        ]  # fmt: skip
    return [
        sys.executable, "-m", "uvicorn", "--factory", "benchmarks._server_apps:fastapi_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/item", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def measure(
    framework: str, variant: str, url: str, warmup: float, seconds: float
) -> dict[str, float]:
    port = _free_port()
    env = {**os.environ, "BENCH_VARIANT": variant, "BENCH_CAPTURE_URL": url}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # servers in production run from bytecode
    env.setdefault("PYTHONPYCACHEPREFIX", "/tmp/posthog-otel-bench-pycache")
    events_before = _events(url)
    server = subprocess.Popen(
        _command(framework, port), cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_ready(port, server)
        load = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._load", str(port), str(CONNECTIONS),
             str(warmup), str(seconds)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(warmup)
        cpu_start = _cpu_seconds(server.pid)
        time.sleep(seconds)
        cpu_end = _cpu_seconds(server.pid)
        rss = _rss_mib(server.pid)
        out, _ = load.communicate(timeout=seconds + 60)
        result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    time.sleep(0.5)
    sent = result["sent"] + 1  # + the readiness probe
    result["cpu_us"] = 1e6 * (cpu_end - cpu_start) / max(1.0, result["requests"])
    result["rss_mib"] = rss
    result["events_per_request"] = (_events(url) - events_before) / sent
    return result


def _median(runs: list[dict[str, float]], key: str) -> tuple[float, float, float]:
    values = [run[key] for run in runs]
    return statistics.median(values), min(values), max(values)


def run() -> list[str]:
    seconds = float(os.environ.get("BENCH_SECONDS", "8"))
    warmup = float(os.environ.get("BENCH_WARMUP", "2"))
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    frameworks = os.environ.get("BENCH_FRAMEWORKS", "flask,fastapi").split(",")
    lines = [
        f"{CONNECTIONS} connections, {warmup:g} s warm-up + {seconds:g} s timed, "
        f"{repeat} repetition(s), interleaved; median (min-max)",
    ]
    for framework in frameworks:
        runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
        with _capture_server() as url:
            for _ in range(repeat):
                for variant in VARIANTS:
                    runs[variant].append(measure(framework, variant, url, warmup, seconds))
        server = "gunicorn sync" if framework == "flask" else "uvicorn"
        lines.append(f"{framework} ({server}):")
        lines.append("  variant | req/s | p50 ms | p99 ms | CPU us/req | RSS MiB | events/req")
        for variant in VARIANTS:
            cells = []
            for key, fmt in (("rps", "{:.0f}"), ("p50_ms", "{:.1f}"), ("p99_ms", "{:.1f}"),
                             ("cpu_us", "{:.0f}"), ("rss_mib", "{:.1f}")):  # fmt: skip
                mid, low, high = _median(runs[variant], key)
                cells.append(f"{fmt.format(mid)} ({fmt.format(low)}-{fmt.format(high)})")
            events = _median(runs[variant], "events_per_request")[0]
            errors = sum(r["errors"] for r in runs[variant])
            lines.append(f"  {variant} | " + " | ".join(cells) + f" | {events:.2f}"
                         + (f" | errors {errors:.0f}" if errors else ""))  # fmt: skip
        med = {v: {k: _median(runs[v], k)[0] for k in runs[v][0]} for v in VARIANTS}
        peer_added = med["contrib_peer"]["cpu_us"] - med["contrib"]["cpu_us"]
        for ours, events in (("ours", "2 events/request vs 1"), ("ours_1ev", "1 event each")):
            ours_added = med[ours]["cpu_us"] - med["contrib"]["cpu_us"]
            cpu_ratio = ours_added / peer_added if peer_added > 0 else float("inf")
            p99_ratio = med[ours]["p99_ms"] / med["contrib_peer"]["p99_ms"]
            lines.append(
                f"  {ours} ({events}): added CPU over contrib {ours_added:.0f} us, "
                f"posthog-python {peer_added:.0f} us, ratio {cpu_ratio:.2f}x (target <= 0.8x: "
                f"{'meets' if cpu_ratio <= 0.8 else 'MISSES'}); p99 / contrib + posthog-python "
                f"{p99_ratio:.2f}x (target <= 1.1x: {'meets' if p99_ratio <= 1.1 else 'MISSES'})"
            )
        rss_added = med["ours"]["rss_mib"] - med["contrib"]["rss_mib"]
        lines.append(
            f"  RSS ours - contrib: {rss_added:+.1f} MiB (target <= +10 MiB: "
            f"{'meets' if rss_added <= 10 else 'MISSES'})"
        )
    return lines


def main() -> None:
    for line in run():
        print(line, flush=True)


if __name__ == "__main__":
    main()
