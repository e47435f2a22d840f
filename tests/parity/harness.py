"""Run the same calls through posthog-python (the oracle) and posthog-otel, and diff the wire.

Each side gets its own client in ``sync_mode`` posting to its own loopback
:class:`CaptureServer`. A scenario is a function of one :class:`Side`; it uses only what both
libraries offer under the same names (``side.client`` methods, ``side.module`` functions such
as ``new_context``/``tag``). The events each server received are normalised (values that are
random or name the library are replaced by placeholders, and the deliberate differences listed
in :data:`DELIBERATE` are removed) and must then be equal, as must the scenario's return value
shape.

    def scenario(side):
        with side.module.new_context():
            side.module.identify_context("u1")
            return side.client.capture("signed_up")

    assert_same(scenario)

``server=`` picks another loopback server for both sides (anything with ``url`` and
``requests`` whose items have ``body``), e.g. one that also answers ``/flags``::

    assert_same(scenario, server=lambda: FlagsServer([Flag("beta")]))
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
import uuid as uuid_module
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import posthog

import posthog_otel
from posthog_otel import global_client
from posthog_otel.testing.capture_server import CaptureServer

__all__ = ["DELIBERATE", "Outcome", "Side", "assert_same", "both", "normalise", "run"]

API_KEY = "phc_parity"

# What posthog-otel sends on purpose that posthog-python does not (README: "Differences from
# posthog-python"). Keys are removed from our events before comparing; nothing else is.
DELIBERATE: dict[str, str] = {
    "properties.$trace_id": "the OpenTelemetry trace of the event (only inside a span)",
    "properties.$span_id": "the OpenTelemetry span of the event (only inside a span)",
    "properties.$device_id": "the context's device id, sent as posthog-js sends it",
    "properties.$window_id": "the context's window id (posthog-js's), sent as posthog-js does",
}
# Extra keys of each $exception_list frame and entry that we add next to posthog-python's.
DELIBERATE_FRAME_KEYS: dict[str, str] = {
    "qualname": "the function's qualified name (`Cart.total`, `handler.<locals>.inner`) next "
    "to the plain `function` PostHog fingerprints on; sent when it says more",
}
DELIBERATE_ENTRY_KEYS: dict[str, str] = {}
# Values of frame keys we send differently on purpose; our value is mapped to posthog-python's.
DELIBERATE_FRAME_VALUES: dict[str, str] = {
    "pre_context/post_context": "a source line over 1024 UTF-8 bytes is cut to fit and ends in "
    "'...' (posthog-python sends null, which PostHog's frame reader does not accept in these "
    "lists of strings)",
}
_LONG_LINE_BYTES = 1024
# posthog-python's own frames (an exception leaving its ``new_context`` passes through its
# contextmanager's frame); our stacks hold ours instead, so neither library's own is compared.
ORACLE_OWN_MODULES = ("posthog",)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass
class Side:
    """One library under test: its module, a client and the server it posts to."""

    name: str
    module: ModuleType
    client: Any
    server: Any  # a CaptureServer, or another server with ``url`` and ``requests``

    @property
    def is_oracle(self) -> bool:
        return self.name == "posthog-python"


@dataclass
class Outcome:
    side: str
    result: Any
    raised: BaseException | None
    bodies: list[dict[str, Any]] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for body in self.bodies for event in body.get("batch", [])]


ServerFactory = Callable[[], Any]


@contextlib.contextmanager
def both(server: ServerFactory = CaptureServer, **options: Any) -> Iterator[tuple[Side, Side]]:
    """The oracle and our side, each with a client built from ``options`` on its own server."""
    with server() as theirs_server, server() as ours_server:
        theirs = posthog.Posthog(API_KEY, host=theirs_server.url, sync_mode=True, **options)
        ours = posthog_otel.Client(API_KEY, host=ours_server.url, sync_mode=True, **options)
        previous = global_client.set_client(ours)
        previous_theirs, posthog.default_client = posthog.default_client, theirs
        try:
            yield (
                Side("posthog-python", posthog, theirs, theirs_server),
                Side("posthog-otel", posthog_otel, ours, ours_server),
            )
        finally:
            global_client.set_client(previous)
            posthog.default_client = previous_theirs
            with contextlib.suppress(Exception):
                theirs.shutdown()
            with contextlib.suppress(Exception):
                ours.shutdown(2.0)


def run(
    scenario: Callable[[Side], Any], server: ServerFactory = CaptureServer, **options: Any
) -> tuple[Outcome, Outcome]:
    """Run ``scenario`` on both sides; return what each returned, raised and sent."""
    outcomes = []
    with both(server, **options) as sides:
        for side in sides:
            raised: BaseException | None = None
            result: Any = None
            try:
                result = scenario(side)
            except Exception as exc:
                raised = exc
            with contextlib.suppress(Exception):
                side.client.flush()
            bodies = [r.body for r in side.server.requests if isinstance(r.body, dict)]
            outcomes.append(Outcome(side.name, result, raised, bodies))
    return outcomes[0], outcomes[1]


def normalise(event: dict[str, Any], *, ours: bool, keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """The event with random and library-naming values replaced, deliberate extras removed."""
    event = json.loads(json.dumps(event))
    for key in ("uuid", "timestamp"):
        if key in event and key not in keep:
            event[key] = f"<{key}>"
    props = event.get("properties")
    if isinstance(props, dict) and isinstance(props.get("$context_tags"), list):
        props["$context_tags"] = sorted(props["$context_tags"], key=str)  # a set in posthog-python
    if isinstance(props, dict):
        for key in ("$lib", "$lib_version"):
            if key in props:
                props[key] = f"<{key}>"
        if ours:
            for dotted in DELIBERATE:
                section, _, key = dotted.partition(".")
                if section == "properties":
                    props.pop(key, None)
        _normalise_exception_list(props.get("$exception_list"), ours=ours)
    distinct_id = event.get("distinct_id")
    if "distinct_id" not in keep and isinstance(distinct_id, str) and _UUID.match(distinct_id):
        event["distinct_id"] = "<random uuid>"
    return event


def _normalise_exception_list(entries: Any, *, ours: bool) -> None:
    if not isinstance(entries, list):
        return
    if not ours:
        _drop_oracle_frames(entries)
        return
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for key in DELIBERATE_ENTRY_KEYS:
            entry.pop(key, None)
        frames = (entry.get("stacktrace") or {}).get("frames")
        for frame in frames if isinstance(frames, list) else ():
            for key in DELIBERATE_FRAME_KEYS:
                frame.pop(key, None)
            for key in ("pre_context", "post_context"):
                if isinstance(frame.get(key), list):
                    frame[key] = [None if _was_cut(line) else line for line in frame[key]]


def _was_cut(line: Any) -> bool:
    return (
        isinstance(line, str)
        and line.endswith("...")
        and len(line.encode("utf-8")) > _LONG_LINE_BYTES - 6
    )


def _drop_oracle_frames(entries: list[Any]) -> None:
    for entry in entries:
        stacktrace = entry.get("stacktrace") if isinstance(entry, dict) else None
        frames = stacktrace.get("frames") if isinstance(stacktrace, dict) else None
        if isinstance(frames, list):
            stacktrace["frames"] = [f for f in frames if not _is_oracle_frame(f)]


def _is_oracle_frame(frame: Any) -> bool:
    module = frame.get("module") if isinstance(frame, dict) else None
    return isinstance(module, str) and any(
        module == own or module.startswith(own + ".") for own in ORACLE_OWN_MODULES
    )


def _shape(value: Any) -> Any:
    """What must match of a return value: None, a uuid, or the value itself (lists too)."""
    if isinstance(value, str) and _UUID.match(value):
        return "<uuid>"
    if isinstance(value, uuid_module.UUID):
        return "<uuid>"
    if isinstance(value, list | tuple):
        return [_shape(item) for item in value]
    return value


def assert_same(
    scenario: Callable[[Side], Any],
    *,
    keep: tuple[str, ...] = (),
    compare_result: bool = True,
    server: ServerFactory = CaptureServer,
    **options: Any,
) -> tuple[Outcome, Outcome]:
    """Fail with a readable diff unless both sides sent the same (normalised) events."""
    theirs, ours = run(scenario, server, **options)
    problems: list[str] = []
    if (theirs.raised is None) != (ours.raised is None):
        problems.append(f"raised: posthog-python {theirs.raised!r}, posthog-otel {ours.raised!r}")
    if compare_result and _shape(theirs.result) != _shape(ours.result):
        problems.append(
            f"returned: posthog-python {_shape(theirs.result)!r}, "
            f"posthog-otel {_shape(ours.result)!r}"
        )
    expected = [normalise(e, ours=False, keep=keep) for e in theirs.events]
    got = [normalise(e, ours=True, keep=keep) for e in ours.events]
    if expected != got:
        diff = difflib.unified_diff(
            _pretty(expected).splitlines(),
            _pretty(got).splitlines(),
            "posthog-python",
            "posthog-otel",
            lineterm="",
            n=4,
        )
        problems.append("events differ:\n" + "\n".join(diff))
    if problems:
        raise AssertionError("\n".join(problems))
    return theirs, ours


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)
