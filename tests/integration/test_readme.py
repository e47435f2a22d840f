"""Every command block of README.md runs, as written, in a fresh venv against a local sink.

The blocks run top to bottom in one work folder holding a copy of this checkout as
``posthog-otel/`` (what a user has after cloning), with a new venv first on ``PATH``. That venv
starts empty: ``pip install`` lines install for real, offline, from a folder of wheels repacked
from this test environment (:mod:`tests.support.wheelhouse`), so a dependency the README
forgets is missing there too. Outbound HTTP that is not to 127.0.0.1 goes to a dead loopback
proxy.

What the test changes in a block before running it: the ``phc_...`` placeholder becomes a
key; PostHog's cloud hosts and the sink's ``127.0.0.1:8010`` become this test's sink; the
example ports 5000 and 4319 become free ports. Markers above a block (see
:mod:`tests.support.readme_blocks`) say what not to run and why, which blocks are files,
servers left running, the events that must arrive and the app's own errors. A block fails on a
non-zero exit, a missing event, or a traceback or start-up failure line on stderr.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from posthog_otel.sink import SinkServer
from tests.support.fresh_venv import FreshVenv
from tests.support.procs import free_port
from tests.support.readme_blocks import Block, readme_blocks

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
KEY = "phc_readme"
BLOCK_TIMEOUT = 180.0
# Lines that mean a start-up went wrong even when the command exits 0.
FAILURE_LINES = (
    "Failed to auto initialize",
    "could not instrument",
    "could not enable",
    "Instrumenting of",
    "Importing of",
    "Configuration of",
    "runs uninstrumented",
)
_TRACEBACK = "Traceback (most recent call last):"


@dataclass
class Workspace:
    folder: Path
    env: dict[str, str]
    sink: SinkServer
    ports: dict[str, int]

    def prepare(self, block: Block) -> str:
        code = block.code.replace("phc_...", KEY)
        for cloud in ("https://eu.i.posthog.com", "https://us.i.posthog.com"):
            code = code.replace(cloud, self.sink.url)
        code = code.replace("http://127.0.0.1:8010", self.sink.url)
        code = code.replace("127.0.0.1:8010", self.sink.url.removeprefix("http://"))
        return re.sub(r"\b(5000|4319)\b", lambda m: str(self.ports[m.group(1)]), code)


def _wheel_roots(blocks: list[Block]) -> list[str]:
    """Everything README pip lines name (FreshVenv adds this project and its build backend)."""
    roots: list[str] = []
    for block in blocks:
        if block.kind != "sh" or "not-run" in block.markers:
            continue
        for line in block.code.splitlines():
            words = line.split("#", 1)[0].replace("'", " ").replace('"', " ").split()
            if words[:2] != ["pip", "install"]:
                continue
            for word in words[2:]:
                if word.startswith(("./posthog-otel[", ".[")):  # this checkout with extras
                    roots.append("posthog-otel" + word[word.index("[") :])
                elif not word.startswith(("-", ".", "/")):
                    roots.append(word)
    return roots


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    folder = tmp_path_factory.mktemp("readme")
    venv = FreshVenv.create(folder, _wheel_roots(readme_blocks(README.read_text())))
    with SinkServer(port=0, db_path=folder / "sink.sqlite3", api_key=KEY) as sink:
        env = {
            **venv.env,
            "POSTHOG_API_KEY": KEY,
            "POSTHOG_HOST": sink.url,
            "BRIDGE_TOKEN": "readme-token",
        }
        yield Workspace(folder, env, sink, {"5000": free_port(), "4319": free_port()})


def _stderr_problems(stderr: str, block: Block) -> list[str]:
    problems = [line for line in stderr.splitlines() if any(f in line for f in FAILURE_LINES)]
    allowed = block.markers.get("app-errors")
    lines = stderr.splitlines()
    for index, line in enumerate(lines):
        if line.strip() != _TRACEBACK:
            continue
        ending = next(
            (ln for ln in lines[index + 1 :] if ln and not ln[0].isspace()), "<no exception line>"
        )
        if allowed is None or allowed not in ending:
            problems.append(f"traceback: {ending}")
    return problems


def _command(block: Block, code: str, workspace: Workspace, number: int) -> list[str]:
    if block.kind == "python":
        script = workspace.folder / f"readme_block_{number}.py"
        script.write_text(code)
        return ["python", script.name]
    return ["bash", "-eo", "pipefail", "-c", code]


def _wait_answering(url: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with {proc.returncode} before {url} answered"
        try:
            requests.get(url, timeout=1, proxies={"http": "", "https": ""})
            return None
        except requests.RequestException:
            time.sleep(0.2)
    return f"{url} did not answer within {timeout:.0f}s"


def _stop(proc: subprocess.Popen[str]) -> str:
    try:
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    except ProcessLookupError:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    return err or ""


def _check_events(block: Block, workspace: Workspace) -> list[str]:
    problems = []
    for name, distinct_id in block.expected():
        # "log": a log record at the OTLP logs endpoint; any other name: an event of that name
        filters: dict[str, str] = {"kind": "otlp_log"} if name == "log" else {"event": name}
        if distinct_id is not None:
            filters["distinct_id"] = distinct_id
        try:
            workspace.sink.wait_for(1, timeout=20, **filters)
        except AssertionError as exc:
            problems.append(str(exc))
    rejected = workspace.sink.rejected()
    if rejected:
        problems.append(f"the sink refused events: {[r.get('reason') for r in rejected]}")
    return problems


@pytest.mark.timeout(900)  # every block in fresh venvs; several minutes on a loaded machine
def test_every_readme_command_block_runs(workspace: Workspace) -> None:
    blocks = readme_blocks(README.read_text())
    failures: list[str] = []
    background: list[tuple[Block, subprocess.Popen[str]]] = []
    ran = 0
    try:
        for number, block in enumerate(blocks):
            if block.kind is None or "not-run" in block.markers:
                continue
            if block.kind == "unknown":
                failures.append(f"{block.label()}: no way to run a {block.language!r} block")
                continue
            code = workspace.prepare(block)
            if "file" in block.markers:
                target = workspace.folder / block.markers["file"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(code)
                continue
            ran += 1
            command = _command(block, code, workspace, number)
            if "background" in block.markers:
                proc = subprocess.Popen(
                    command,
                    cwd=workspace.folder,
                    env=workspace.env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
                background.append((block, proc))
                url = workspace.prepare(Block(0, "sh", block.markers["background"]))
                problem = _wait_answering(url.strip(), proc)
                if problem:
                    failures.append(f"{block.label()}: {problem}: {_stop(proc)[-2000:]}")
                    background.remove((block, proc))
                continue
            done = subprocess.run(
                command,
                cwd=workspace.folder,
                env=workspace.env,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT,
            )
            if done.returncode != 0:
                failures.append(
                    f"{block.label()}: exit {done.returncode}\n{done.stdout[-1500:]}\n"
                    f"{done.stderr[-3000:]}"
                )
                continue
            problems = _stderr_problems(done.stderr, block) + _check_events(block, workspace)
            failures.extend(f"{block.label()}: {p}" for p in problems)
    finally:
        for block, proc in background:
            stderr = _stop(proc)
            failures.extend(f"{block.label()}: {p}" for p in _stderr_problems(stderr, block))
    assert ran > 0
    assert not failures, "\n\n".join(failures)
