"""Services in other languages for the pipeline tests: Java under the OpenTelemetry Java agent,
Go with the Go SDK, Node.js with the Node SDK, each built or fetched once into a cache.

Sources live in ``tests/peers/{java,go,node}``. Everything downloaded or built goes under
``~/.cache/posthog-otel/`` (``POSTHOG_OTEL_POLYGLOT_CACHE`` moves the ``java`` and ``go`` roots):

* ``java/opentelemetry-javaagent-<version>.jar``: the agent from Maven Central, fetched with
  ``mvn dependency:copy`` and checked against the SHA-256 pinned here;
* ``java/classes/<hash of the sources and javac's version>/``: ``javac`` output;
* ``go/<hash of go.mod, go.sum, main.go and Go's version>/go-shop``: ``go build -trimpath``
  (modules come through Go's own module cache);
* ``node/<hash>/``: tests/peers/node's packages (``tests/support/node_peers.py``).

A missing toolchain skips the language's tests locally; in CI (``CI=true``) or with
``POSTHOG_OTEL_REQUIRE_JAVA=1`` / ``POSTHOG_OTEL_REQUIRE_GO=1`` / ``POSTHOG_OTEL_REQUIRE_NODE=1``
it fails them. ``python -m tests.support.polyglot_peers`` prepares all three and prints the
time each took.

    with running_service("java", traces_url="http://127.0.0.1:4318/v1/traces") as java:
        requests.get(f"{java.url}/checkout", headers={"baggage": "posthog.distinct_id=u1"})
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.node_peers import node_modules
from tests.support.procs import free_port, terminate

PEERS = Path(__file__).resolve().parents[1] / "peers"
JAVA_SOURCES = PEERS / "java" / "src"
GO_SOURCES = PEERS / "go"
NODE_SOURCES = PEERS / "node"

JAVA_AGENT_VERSION = "2.33.1"
JAVA_AGENT_SHA256 = "e43a270df53c6f423e0ab157be9c27ccc01d5dc3232e162fe54777573db2f149"
_JAVA_AGENT = f"io.opentelemetry.javaagent:opentelemetry-javaagent:{JAVA_AGENT_VERSION}:jar"
_GO_INPUTS = ("go.mod", "go.sum", "main.go")
LANGUAGES = ("java", "go", "node")


def required(language: str) -> bool:
    flag = f"POSTHOG_OTEL_REQUIRE_{language.upper()}"
    return os.environ.get("CI", "").lower() == "true" or os.environ.get(flag) == "1"


def _unavailable(language: str, reason: str) -> None:
    if required(language):
        pytest.fail(
            f"{language} is required here (CI / POSTHOG_OTEL_REQUIRE_{language.upper()}=1): {reason}"
        )
    pytest.skip(reason)


def _cache_root(language: str) -> Path:
    configured = os.environ.get("POSTHOG_OTEL_POLYGLOT_CACHE")
    base = Path(configured) if configured else Path.home() / ".cache" / "posthog-otel"
    return base / language


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One builder at a time per cache folder (pytest-xdist workers, two CI runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:3])} failed:\n{result.stdout}\n{result.stderr}"[-4000:]
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def java_agent() -> Path:
    """The OpenTelemetry Java agent jar (downloaded with Maven the first time, hash-checked)."""
    mvn = shutil.which("mvn")
    root = _cache_root("java")
    jar = root / f"opentelemetry-javaagent-{JAVA_AGENT_VERSION}.jar"
    if jar.exists():
        return jar
    if mvn is None:
        _unavailable(
            "java", "the Java service needs mvn on PATH to fetch the OpenTelemetry Java agent"
        )
    with _locked(root):
        if not jar.exists():
            with tempfile.TemporaryDirectory(dir=root) as scratch:
                _run(
                    [
                        str(mvn),
                        "-q",
                        "-B",
                        "dependency:copy",
                        f"-Dartifact={_JAVA_AGENT}",
                        f"-DoutputDirectory={scratch}",
                    ],
                    cwd=Path(scratch),
                )
                fetched = Path(scratch) / jar.name
                actual = _sha256(fetched)
                if actual != JAVA_AGENT_SHA256:
                    raise RuntimeError(
                        f"{jar.name}: SHA-256 {actual}, expected {JAVA_AGENT_SHA256}"
                    )
                fetched.rename(jar)
    return jar


def java_classes() -> Path:
    """tests/peers/java compiled with javac (once per source and javac version)."""
    javac = shutil.which("javac")
    if javac is None or shutil.which("java") is None:
        _unavailable("java", "the Java service needs java and javac on PATH")
        raise AssertionError("unreachable")
    version = subprocess.run([javac, "-version"], capture_output=True, text=True, check=True)
    sources = sorted(JAVA_SOURCES.rglob("*.java"))
    digest = hashlib.sha256((version.stdout + version.stderr).encode())
    for source in sources:
        digest.update(str(source.relative_to(JAVA_SOURCES)).encode() + b"\0" + source.read_bytes())
    target = _cache_root("java") / "classes" / digest.hexdigest()[:16]
    done = target / ".built"
    if not done.exists():
        with _locked(target):
            if not done.exists():
                _run([javac, "--release", "17", "-d", str(target), *map(str, sources)], cwd=target)
                done.write_text("ok\n")
    return target


def go_binary() -> Path:
    """tests/peers/go built with go build -trimpath (once per source and Go version)."""
    go = shutil.which("go")
    if go is None:
        _unavailable("go", "the Go service needs go on PATH")
        raise AssertionError("unreachable")
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly -buildvcs=false"}
    version = subprocess.run(
        [go, "env", "GOVERSION"], capture_output=True, text=True, check=True, env=env
    ).stdout
    digest = hashlib.sha256(version.encode())
    for name in _GO_INPUTS:
        digest.update(name.encode() + b"\0" + (GO_SOURCES / name).read_bytes())
    target = _cache_root("go") / digest.hexdigest()[:16]
    binary = target / "go-shop"
    if not binary.exists():
        with _locked(target):
            if not binary.exists():
                partial = target / f"go-shop.{os.getpid()}.partial"
                _run([go, "build", "-trimpath", "-o", str(partial), "."], cwd=GO_SOURCES, env=env)
                partial.rename(binary)
    return binary


def node_service() -> Path:
    """otel_service.js beside the cached packages of tests/peers/node."""
    folder = node_modules().parent
    script = folder / "otel_service.js"
    shutil.copyfile(NODE_SOURCES / "otel_service.js", script)
    return script


def prepare(language: str) -> list[str]:
    """Fetch or build ``language``'s service; the command that runs it, before its port and URL."""
    try:
        if language == "java":
            agent, classes = java_agent(), java_classes()
            return ["java", f"-javaagent:{agent}", "-cp", str(classes)]
        if language == "go":
            return [str(go_binary())]
        if language == "node":
            return [shutil.which("node") or "node", str(node_service())]
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        _unavailable(language, f"could not prepare the {language} service: {exc}")
    raise ValueError(f"unknown language {language!r}")


def java_agent_properties(traces_url: str) -> list[str]:
    """The Java agent's settings: OTLP/HTTP protobuf traces to ``traces_url``, ``posthog.*``
    baggage copied to span attributes, no metrics or logs exporters, no cloud probes."""
    return [
        "-Dotel.service.name=java-shop",
        "-Dotel.traces.exporter=otlp",
        "-Dotel.exporter.otlp.protocol=http/protobuf",
        f"-Dotel.exporter.otlp.traces.endpoint={traces_url}",
        "-Dotel.metrics.exporter=none",
        "-Dotel.logs.exporter=none",
        "-Dotel.java.experimental.span-attributes.copy-from-baggage.include=posthog.*",
        "-Dotel.bsp.schedule.delay=200",
        "-Dotel.resource.providers.aws.enabled=false",
        "-Dotel.resource.providers.gcp.enabled=false",
        "-Dotel.resource.providers.azure.enabled=false",
        "-Dotel.javaagent.logging=application",
    ]


@dataclass
class RunningService:
    language: str
    url: str
    proc: subprocess.Popen[str]
    output: list[str]

    def log(self) -> str:
        return "".join(self.output)


def _pump(proc: subprocess.Popen[str], output: list[str], ready: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        output.append(line)
        if line.startswith("listening "):
            ready.set()
    ready.set()


@contextmanager
def running_service(
    language: str, *, traces_url: str, start_timeout: float = 90.0
) -> Iterator[RunningService]:
    """Start ``language``'s shop on a free 127.0.0.1 port, exporting to ``traces_url``."""
    command = prepare(language)
    port = free_port()
    if language == "java":
        args = [command[0], *java_agent_properties(traces_url), *command[1:]]
        args += ["com.example.shop.ShopServer", str(port)]
    else:
        args = [*command, str(port), traces_url]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=PEERS
    )
    output: list[str] = []
    ready = threading.Event()
    threading.Thread(target=_pump, args=(proc, output, ready), daemon=True).start()
    service = RunningService(language, f"http://127.0.0.1:{port}", proc, output)
    try:
        if not ready.wait(start_timeout) or proc.poll() is not None:
            raise AssertionError(f"the {language} service did not start:\n{service.log()}")
        yield service
    finally:
        terminate(proc, 30, read=False)  # _pump reads its output


def _main() -> None:
    for language in sys.argv[1:] or LANGUAGES:
        started = time.monotonic()
        command = prepare(language)
        print(f"{language}: {time.monotonic() - started:.1f} s  {' '.join(command)}")


if __name__ == "__main__":
    _main()
