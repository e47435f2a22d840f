"""Waiting for events (or any condition) that another thread or process produces.

One deadline, one polling loop, one failure message: a test that waits calls ``wait_for_events``
(events in a capture server, an in-memory client or any list) or ``wait_until`` (anything else)
instead of writing its own ``while time.monotonic() < deadline`` loop.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from posthog_otel.testing import CapturedEvents
from posthog_otel.testing.capture_server import CaptureServer

T = TypeVar("T")

Event = dict[str, Any]
Source = CaptureServer | CapturedEvents | Callable[[], Iterable[Event]]
Procs = Mapping[str, "subprocess.Popen[str]"] | Iterable["subprocess.Popen[str]"]


def wait_until(
    probe: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str | Callable[[], str] = "the condition",
    procs: Procs = (),
) -> T:
    """Call ``probe`` until it returns something truthy, and return that.

    Raises AssertionError naming ``what`` once ``timeout`` seconds have passed, or at once when
    one of ``procs`` (processes that produce what is awaited, by name or as a list) has exited:
    waiting on would only hide why nothing comes.
    """
    named = list(procs.items()) if isinstance(procs, Mapping) else [(str(p.args), p) for p in procs]
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        for name, proc in named:
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(
                    f"{name} exited with {proc.returncode}:\n{(out or '')[-3000:]}\n"
                    f"{(err or '')[-3000:]}"
                )
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"gave up after {timeout} s waiting for {described}")
        time.sleep(interval)


def wait_for_events(
    source: Source,
    match: Callable[[Event], bool] | None = None,
    count: int = 1,
    *,
    timeout: float = 10.0,
    procs: Procs = (),
) -> list[Event]:
    """Wait until ``source`` holds at least ``count`` events for which ``match`` is true (all
    events without ``match``); return those events (all of them, possibly more than ``count``).
    """

    found: list[Event] = []

    def enough() -> bool:
        found[:] = [e for e in _events(source) if match is None or match(e)]
        return len(found) >= count

    wait_until(enough, timeout=timeout, procs=procs, what=lambda: f"{count} events, got {found}")
    return found


def _events(source: Source) -> list[Event]:
    if isinstance(source, CaptureServer):
        return source.events
    if isinstance(source, CapturedEvents):
        return source.all
    return list(source())
