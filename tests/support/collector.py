"""A real OpenTelemetry Collector for tests: built once from tests/peers/collector, run on loopback.

Build. ``collector_binary()`` compiles the minimal distribution in ``tests/peers/collector``
(``main.go`` + ``components.go`` + the pinned ``go.mod``/``go.sum``: collector v0.165.0 / v1.71.0,
contrib ``groupbytrace`` v0.165.1; the otlp receiver, the batch, memory_limiter and groupbytrace
processors, the otlp and otlphttp exporters) with ``go build`` into
``~/.cache/posthog-otel/collector/<hash of those files and the Go version>/otelcol`` and reuses
it afterwards (``POSTHOG_OTEL_COLLECTOR_CACHE`` moves the cache root). Concurrent builds wait on
one file lock. The first build downloads the modules (Go's default module cache) and compiles
(about 4 minutes on 2 busy cores); later ones take milliseconds. From a shell::

    .venv/bin/python -m tests.support.collector      # builds if needed, prints the binary path

Without ``go`` on PATH, or when the build fails, tests skip with the reason; in CI (``CI=true``)
or with ``POSTHOG_OTEL_REQUIRE_COLLECTOR=1`` they fail instead.

Run. ``running_collector(bridge_url, ...)`` starts the binary with
``examples/collector/collector.yaml`` (the README's configuration, not a copy) plus any overlay
files (``overlays=[EXAMPLES / "groupbytrace.yaml"]``; the Collector merges ``--config`` files in
order), on free 127.0.0.1 ports, and yields a ``RunningCollector``:

    with running_collector("http://127.0.0.1:4319", token="t") as collector:
        collector.grpc_endpoint   # "127.0.0.1:PORT"  -> OTLP/gRPC exporters
        collector.http_endpoint   # "http://127.0.0.1:PORT" -> OTLP/HTTP (append /v1/traces)
        collector.proc            # the subprocess (stderr: the Collector's log)

The bridge must be started with ``--require-header "Authorization=Bearer <token>"`` when
``token`` is given (the example always sends the header; the bridge ignores it otherwise).
``env`` adds variables for overlays that reference more ``${env:...}``. On exit the Collector
gets SIGTERM and drains its queue for up to ``stop_timeout`` seconds.

``collectors()`` is a factory for the same, for fixtures: ``start(bridge_url, **options)``
returns a ``RunningCollector``; all are stopped when the block ends. The pytest fixture
``collector`` wraps it (``pytest_plugins = ["tests.support.collector"]``)::

    @pytest.fixture
    def start_collector() -> Iterator[Callable[..., RunningCollector]]:
        with collectors() as start:
            yield start
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "tests" / "peers" / "collector"
EXAMPLES = ROOT / "examples" / "collector"
EXAMPLE_CONFIG = EXAMPLES / "collector.yaml"
_INPUTS = ("go.mod", "go.sum", "main.go", "components.go")


def collector_required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or (
        os.environ.get("POSTHOG_OTEL_REQUIRE_COLLECTOR") == "1"
    )


def _unavailable(reason: str) -> None:
    if collector_required():
        pytest.fail(
            f"the Collector is required here (CI / POSTHOG_OTEL_REQUIRE_COLLECTOR=1): {reason}"
        )
    pytest.skip(reason)


def _cache_root() -> Path:
    configured = os.environ.get("POSTHOG_OTEL_COLLECTOR_CACHE")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "posthog-otel" / "collector"


def _go_env() -> dict[str, str]:
    # The go.mod names go 1.26: the machine's own Go builds it; never fetch another toolchain.
    return {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly -buildvcs=false"}


def build(go: str) -> Path:
    """Build (or find) the Collector binary; raises RuntimeError with Go's output on failure."""
    version = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=True, env=_go_env()
    ).stdout.strip()
    digest = hashlib.sha256(version.encode())
    for name in _INPUTS:
        digest.update(name.encode() + b"\0" + (SOURCES / name).read_bytes())
    target = _cache_root() / digest.hexdigest()[:16]
    binary = target / "otelcol"
    if binary.exists():
        return binary
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same binary
        if binary.exists():
            return binary
        partial = target / f"otelcol.{os.getpid()}.partial"
        started = time.monotonic()
        result = subprocess.run(
            [go, "build", "-trimpath", "-o", str(partial), "."],
            cwd=SOURCES,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            env=_go_env(),
        )
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise RuntimeError(f"go build failed:\n{result.stdout}\n{result.stderr}"[-4000:])
        partial.rename(binary)
        (target / "build-seconds").write_text(f"{time.monotonic() - started:.1f}\n")
    return binary


def collector_binary() -> Path:
    """The built Collector (building it the first time); skips or fails when it cannot be had."""
    go = shutil.which("go")
    if go is None:
        _unavailable("the Collector tests need Go on PATH to build the Collector")
        raise AssertionError("unreachable")
    try:
        return build(go)
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        _unavailable(f"could not build the Collector: {exc}")
        raise AssertionError("unreachable") from exc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class RunningCollector:
    grpc_endpoint: str  # host:port for OTLP/gRPC
    http_endpoint: str  # base URL for OTLP/HTTP
    proc: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        """The Collector's log so far (its stderr)."""
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_collector(
    bridge_url: str,
    *,
    token: str = "collector-test",
    overlays: Sequence[Path] = (),
    config: Path = EXAMPLE_CONFIG,
    env: dict[str, str] | None = None,
    stop_timeout: float = 30.0,
) -> Iterator[RunningCollector]:
    """Run the Collector with ``config`` (+ ``overlays``) exporting to ``bridge_url``."""
    binary = collector_binary()
    grpc_port, http_port = _free_port(), _free_port()
    full_env = {
        **os.environ,
        "BRIDGE_ENDPOINT": bridge_url,
        "BRIDGE_TOKEN": token,
        "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
        "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
        **(env or {}),
    }
    args = [str(binary)]
    for path in (config, *overlays):
        args += ["--config", str(path)]
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="otelcol-")))
        log_path = folder / "collector.log"
        log = stack.enter_context(open(log_path, "w"))
        proc = subprocess.Popen(
            args, env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True, cwd=folder
        )
        running = RunningCollector(
            f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{http_port}", proc, log_path
        )
        try:
            deadline = time.monotonic() + 30
            while not (_listening(grpc_port) and _listening(http_port)):
                if proc.poll() is not None:
                    raise AssertionError(
                        f"the Collector exited ({proc.returncode}):\n{running.log()}"
                    )
                if time.monotonic() > deadline:
                    raise AssertionError(f"the Collector did not start:\n{running.log()}")
                time.sleep(0.1)
            yield running
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def collectors() -> Iterator[Callable[..., RunningCollector]]:
    """A ``start(bridge_url, **running_collector_options)`` function; every Collector it
    started is stopped when the block ends."""
    with ExitStack() as stack:

        def start(bridge_url: str, **options: Any) -> RunningCollector:
            return stack.enter_context(running_collector(bridge_url, **options))

        yield start


@pytest.fixture
def collector() -> Iterator[Callable[..., RunningCollector]]:
    """Factory fixture: ``collector(bridge_url, **options)``; stopped after the test. Enable it
    with ``pytest_plugins = ["tests.support.collector"]`` (or wrap ``collectors()``)."""
    with collectors() as start:
        yield start


if __name__ == "__main__":
    found = shutil.which("go")
    if found is None:
        sys.exit("go is not on PATH")
    print(build(found))
