"""Uncaught exceptions: a client with ``enable_exception_autocapture=True`` reports them.

The same program ends with an uncaught exception (in the main thread, or in a thread) once with
posthog-python's client and once with ours, in subprocesses; the events must be equal. The
in-process tests check that the hooks chain the previous ones and are removed on shutdown.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

import posthog_otel
from posthog_otel.testing.capture_server import CaptureServer

from .harness import API_KEY, _pretty, normalise

APP = Path(__file__).with_name("_uncaught_app.py")
ROOT = Path(__file__).resolve().parents[2]


def _events(library: str, where: str) -> tuple[list[dict[str, Any]], str]:
    with CaptureServer() as server:
        done = subprocess.run(
            [sys.executable, str(APP), library, where, server.url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        bodies = [r.body for r in server.requests if isinstance(r.body, dict)]
    events = [e for body in bodies for e in body.get("batch", [])]
    return events, done.stderr


@pytest.mark.parametrize("where", ["main", "thread"])
def test_uncaught_exception_is_reported_as_posthog_python_reports_it(where: str) -> None:
    theirs, their_stderr = _events("posthog-python", where)
    ours, our_stderr = _events("posthog-otel", where)
    assert [normalise(e, ours=False) for e in theirs] == [normalise(e, ours=True) for e in ours], (
        _pretty(theirs) + "\n---\n" + _pretty(ours)
    )
    [event] = ours
    props = event["properties"]
    [entry] = props["$exception_list"]
    assert (entry["type"], entry["value"]) == ("CheckoutFailed", "card declined")
    assert entry["mechanism"]["type"] == "onuncaughtexception"
    assert entry["mechanism"]["handled"] is False
    expected = (
        ("fatal", "python.sys_excepthook")
        if where == "main"
        else (
            "error",
            "python.threading_excepthook",
        )
    )
    assert (props["$exception_level"], props["$exception_source"]) == expected
    # The previous hook still ran: Python's own printed the traceback.
    assert "CheckoutFailed: card declined" in our_stderr
    assert "CheckoutFailed: card declined" in their_stderr


def test_hooks_chain_the_previous_ones_and_are_removed_on_shutdown() -> None:
    seen: list[str] = []

    def previous_sys(
        kind: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        seen.append(f"sys:{exc}")

    def previous_thread(args: Any) -> None:
        seen.append(f"thread:{args.exc_value}")

    saved = sys.excepthook, threading.excepthook
    sys.excepthook, threading.excepthook = previous_sys, previous_thread
    try:
        with CaptureServer() as server:
            client = posthog_otel.Client(API_KEY, host=server.url, sync_mode=True)
            assert sys.excepthook is not previous_sys
            assert threading.excepthook is not previous_thread
            try:
                raise KeyError("main")
            except KeyError as exc:
                sys.excepthook(KeyError, exc, exc.__traceback__)
            worker = threading.Thread(target=lambda: 1 / 0)
            worker.start()
            worker.join()
            client.shutdown(2.0)
            assert (sys.excepthook, threading.excepthook) == (previous_sys, previous_thread)
            events = [
                e for r in server.requests if isinstance(r.body, dict) for e in r.body["batch"]
            ]
    finally:
        sys.excepthook, threading.excepthook = saved
    assert seen == ["sys:'main'", "thread:division by zero"]
    assert sorted(e["properties"]["$exception_list"][0]["type"] for e in events) == [
        "KeyError",
        "ZeroDivisionError",
    ]


def test_no_hooks_without_autocapture_or_when_disabled() -> None:
    before = sys.excepthook, threading.excepthook
    for options in ({"enable_exception_autocapture": False}, {"disabled": True}):
        client = posthog_otel.Client(API_KEY, host="http://127.0.0.1:9", **options)
        assert (sys.excepthook, threading.excepthook) == before
        client.shutdown(0.1)


def test_a_hook_installed_over_ours_keeps_working_after_shutdown() -> None:
    saved = sys.excepthook
    calls: list[str] = []
    sys.excepthook = lambda *args: calls.append("original")
    try:
        client = posthog_otel.Client(API_KEY, host="http://127.0.0.1:9", sync_mode=True)
        ours = sys.excepthook

        def later(*args: Any) -> None:
            calls.append("later")
            ours(*args)

        sys.excepthook = later
        client.shutdown(0.1)
        assert sys.excepthook is later  # not ours to remove any more
        sys.excepthook(ValueError, ValueError("x"), None)
        assert calls == ["later", "original"]  # ours passes it on without capturing
    finally:
        sys.excepthook = saved
