"""Each example runs from a plain install with exactly the packages its docstring names.

Every example's docstring has a ``Needs: ``pip install ...`` `` line. For each, a fresh venv
installs that line offline (:mod:`tests.support.fresh_venv`), then the example runs from the
clone as its docstring says, against a local sink, and its events must arrive. A package the
example imports but the line forgets fails here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from posthog_otel.sink import SinkServer
from tests.support.fresh_venv import FreshVenv
from tests.support.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "quickstart": ROOT / "examples" / "quickstart.py",
    "flask": ROOT / "examples" / "flask_app.py",
    "fastapi": ROOT / "examples" / "fastapi_app.py",
    "django": ROOT / "examples" / "django_app" / "manage.py",
    "celery": ROOT / "examples" / "celery_app.py",
    "llm": ROOT / "examples" / "llm" / "assistant.py",
}
KEY = "phc_examples"
HEADERS = {"X-POSTHOG-DISTINCT-ID": "user-1", "X-POSTHOG-SESSION-ID": "s-1"}
FAILURE_LINES = ("could not enable", "could not instrument", "Failed to auto initialize")


def _needs(path: Path) -> list[str]:
    found = re.search(r"Needs: ``pip install ([^`]+)``", path.read_text())
    assert found, f"{path.name}: its docstring names no `Needs: ``pip install ...``` line"
    return found.group(1).split()


def test_every_example_names_what_it_needs() -> None:
    for path in ROOT.joinpath("examples").rglob("*.py"):
        if path.name in ("__init__.py", "asgi.py", "settings.py", "urls.py"):
            continue  # parts of the Django project, run through manage.py
        assert path in EXAMPLES.values(), f"{path} needs a check in this module"
        assert "./posthog-otel" in _needs(path)


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> str:
    try:
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    except ProcessLookupError:
        _, err = proc.communicate()
    return err or ""


def _wait_up(url: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited early: {proc.communicate()[1][-3000:]}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


def _serve(venv: FreshVenv, sink: SinkServer, command: list[str], path: str, event: str) -> str:
    """Start a web example, call ``path`` as user-1, wait for its events; returns stderr."""
    port = free_port()
    env = {"POSTHOG_API_KEY": KEY, "POSTHOG_HOST": sink.url, "PORT": str(port)}
    command = [part.replace("{port}", str(port)) for part in command]
    proc = venv.start(command, cwd_clone=True, **env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_up(base + "/", proc)
        answer = requests.get(base + path, headers=HEADERS, timeout=20)
        assert answer.status_code == 200, answer.text
        sink.wait_for(1, timeout=20, event=event, distinct_id="user-1")
    finally:
        stderr = _stop(proc)
    return stderr


def _quickstart(venv: FreshVenv, sink: SinkServer) -> str:
    done = venv.run(["python", "examples/quickstart.py"], cwd_clone=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: {'order_completed': 1, 'receipt_sent': 1, '$exception': 1}" in done.stdout
    return done.stderr


def _celery(venv: FreshVenv, sink: SinkServer) -> str:
    queue = venv.folder / "queue"
    env = {"POSTHOG_API_KEY": KEY, "POSTHOG_HOST": sink.url, "CELERY_QUEUE_DIR": str(queue)}
    produced = venv.run(["python", "-m", "examples.celery_app"], cwd_clone=True, **env)
    assert produced.returncode == 0, produced.stdout + produced.stderr
    worker = venv.start(
        ["celery", "-A", "examples.celery_app", "worker", "-P", "solo", "-l", "warning"],
        cwd_clone=True,
        **env,
    )
    try:
        sink.wait_for(1, timeout=60, event="receipt_sent", distinct_id="user-1")
        sink.wait_for(2, timeout=30, event="$exception", distinct_id="user-1")
    finally:
        stderr = _stop(worker, signal.SIGTERM)
    return produced.stderr + stderr


def _llm(venv: FreshVenv, sink: SinkServer) -> str:
    env = {"POSTHOG_API_KEY": KEY, "POSTHOG_HOST": sink.url}
    done = venv.run(["python", "examples/llm/assistant.py"], cwd_clone=True, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    sink.wait_for(1, timeout=30, event="$ai_generation", distinct_id="user-42")
    return done.stderr


RUNS: dict[str, Callable[[FreshVenv, SinkServer], str]] = {
    "quickstart": _quickstart,
    "llm": _llm,
    "flask": lambda venv, sink: _serve(
        venv, sink, ["python", "examples/flask_app.py"], "/checkout", "order_completed"
    ),
    "fastapi": lambda venv, sink: _serve(
        venv,
        sink,
        ["python", "-m", "uvicorn", "examples.fastapi_app:app", "--port", "{port}"],
        "/checkout",
        "receipt_sent",
    ),
    "django": lambda venv, sink: _serve(
        venv,
        sink,
        ["python", "examples/django_app/manage.py", "runserver", "--noreload", "{port}"],
        "/checkout/",
        "order_completed",
    ),
    "celery": _celery,
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_from_a_plain_install(name: str, tmp_path: Path) -> None:
    needs = _needs(EXAMPLES[name])
    venv = FreshVenv.create(tmp_path, [n for n in needs if not n.startswith(".")])
    installed = venv.run(["pip", "install", *needs])
    assert installed.returncode == 0, installed.stdout + installed.stderr
    with SinkServer(port=0, db_path=tmp_path / "sink.sqlite3", api_key=KEY) as sink:
        stderr = RUNS[name](venv, sink)
        assert sink.rejected() == []
    problems = [line for line in stderr.splitlines() if any(f in line for f in FAILURE_LINES)]
    assert problems == [], stderr[-3000:]
