"""Helpers to run example apps as real subprocesses on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, proc: subprocess.Popen[str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"app exited early ({proc.returncode}):\n{out}\n{err}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        args, env=full_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def stop(proc: subprocess.Popen[str], timeout: float = 20.0) -> tuple[str, str]:
    """SIGINT (so atexit handlers flush), then wait; returns (stdout, stderr)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"process did not exit in time:\n{out}\n{err}") from None


def terminate(proc: subprocess.Popen[str], timeout: float = 30.0, *, read: bool = True) -> None:
    """SIGTERM unless it has exited, wait up to ``timeout`` seconds, then kill; output is
    discarded. ``read=False`` only waits, for a process whose output another thread reads."""
    finish = proc.communicate if read else proc.wait
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        finish(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        finish()
