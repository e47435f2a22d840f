"""Holding an AI event back briefly, for GenAI content records that arrive after its span.

Through a Collector, a service's logs and traces travel in separate pipelines and batches, so
the ``gen_ai.*`` content records of a model call (:mod:`posthog_otel.spans.genai_logs`) may
reach the bridge before or after the call's span. Records that come first wait in
:data:`~posthog_otel.spans.genai_logs.CONTENT` and the span's event claims them when it is
made. For the other order, a ``$ai_generation`` made without its messages (no ``$ai_input``,
or no ``$ai_output_choices`` for a call that did not fail) is held here, by trace and span id,
for up to ``wait`` seconds:

* records for it arrive (:meth:`GenAiWait.content_arrived`, then :meth:`GenAiWait.send_joined`
  once the logs request is mapped, on the same thread: a request that ends sends only what its
  own records joined, not an event whose records another thread is still mapping): it is made
  again with them
  (:meth:`~posthog_otel.spans.mapping.SpanMapper.with_records`, the same rules as records that
  came first) and sent;
* the wait ends: it is sent as it is (with any records that arrived meanwhile), from a timer
  thread;
* more than ``max_events`` events or ``max_bytes`` (estimated JSON of the event and of the
  span's attributes and events it keeps to be made again) are held: the oldest is sent at
  once, without waiting;
* :meth:`GenAiWait.close` (bridge shutdown): every held event is sent.

An event is never dropped here, and its person, session, tags and timestamp never change.
Nothing is held when ``wait`` is 0, LLM analytics is off or in privacy mode (content records
are not kept then either), or for other events (``$ai_embedding``, ``$ai_span``, ``$ai_trace``:
the instrumentations send content records for model calls). The hold is per process: records
that reach another ``--workers`` process than their span are not joined.

Usage::

    wait = GenAiWait(mapper, wait=5.0, max_events=10_000, max_bytes=16 * MIB)
    if not wait.hold(event, client):          # False: not held, capture it now
        client.capture_raw(event.name, ...)
    wait.content_arrived(trace_id, span_id)   # as the logs request is mapped
    wait.send_joined()                        # after it
    wait.close()                              # on shutdown
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, NamedTuple

from ..delivery.sizing import approx_json_size
from ..spans import genai_logs
from ..spans.mapping import SpanEvent, SpanMapper

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["DEFAULT_WAIT_SECONDS", "GenAiWait"]

#: Several times an OpenTelemetry Collector's ``batch`` processor timeout (200 ms by default,
#: 1 s in ``examples/collector``), which is how far apart a call's span and records may leave it,
#: plus the time to send them.
DEFAULT_WAIT_SECONDS = 5.0

_Key = tuple[int, int]


class _Held(NamedTuple):
    event: SpanEvent
    client: Client
    deadline: float
    size: int


class GenAiWait:
    """The held events of one bridge process (thread-safe); see the module docstring."""

    def __init__(
        self,
        mapper: SpanMapper,
        *,
        wait: float = DEFAULT_WAIT_SECONDS,
        max_events: int = 10_000,
        max_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        ai = mapper.options.ai
        self.enabled = wait > 0 and ai.enabled and not ai.privacy_mode
        self._mapper = mapper
        self._wait = wait
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._held: OrderedDict[_Key, _Held] = OrderedDict()  # oldest (first deadline) first
        self._local = threading.local()  # .joined: held events this thread's records joined
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._sending = 0  # events taken out and not yet queued (still counted as held)
        self._sending_bytes = 0
        self._bytes = 0
        self.counters = {
            "ai_events_held": 0,  # events held back
            "ai_held_joined": 0,  # sent with content records that arrived after the span
            "ai_held_expired": 0,  # sent when the wait ended, without such records
            "ai_held_overflow": 0,  # sent early: the hold was full
        }

    def held(self) -> tuple[int, int]:
        """Events and estimated bytes held (and being sent): for admission, like queued ones."""
        with self._lock:
            return len(self._held) + self._sending, self._bytes + self._sending_bytes

    def stats(self) -> dict[str, int]:
        """Counters for ``/stats``, with ``ai_held_now``."""
        with self._lock:
            return {**self.counters, "ai_held_now": len(self._held)}

    def hold(self, event: SpanEvent, client: Client) -> bool:
        """Hold ``event`` when it may still receive content; False: send it now yourself."""
        key = _waiting_key(event) if self.enabled else None
        if key is None:
            return False
        size = _held_size(event)
        overflow: list[_Held] = []
        with self._lock:
            if self._closed or key in self._held:
                return False  # a span exported twice: the first copy waits, this one goes
            self._held[key] = _Held(event, client, time.monotonic() + self._wait, size)
            self._bytes += size
            self.counters["ai_events_held"] += 1
            while len(self._held) > 1 and (
                len(self._held) > self._max_events or self._bytes > self._max_bytes
            ):
                overflow.append(self._take(next(iter(self._held))))
            self.counters["ai_held_overflow"] += len(overflow)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="posthog-otel-genai-wait", daemon=True
                )
                self._thread.start()
            elif len(self._held) == 1:
                self._wake.notify()
        self._send(overflow)
        return True

    def content_arrived(self, trace_id: int, span_id: int) -> None:
        """A GenAI content record for this span was kept: a held event for it is sent by the
        next :meth:`send_joined`."""
        key = (trace_id, span_id)
        if key in self._held:  # unlocked peek: most records have no held event
            joined: set[_Key] | None = getattr(self._local, "joined", None)
            if joined is None:
                joined = self._local.joined = set()
            joined.add(key)

    def send_joined(self) -> int:
        """Send the held events whose records arrived on this thread (since its last call);
        how many were sent."""
        joined: set[_Key] | None = getattr(self._local, "joined", None)
        if not joined:
            return 0
        self._local.joined = set()
        with self._lock:
            taken = [self._take(key) for key in joined if key in self._held]
        self._send(taken)
        return len(taken)

    def close(self) -> int:
        """Send every held event now and hold no more; how many were sent."""
        with self._lock:
            self._closed = True
            taken = [self._take(key) for key in list(self._held)]
            self._wake.notify()
            thread = self._thread
        self._send(taken)
        if thread is not None:
            thread.join(5.0)
        return len(taken)

    def _take(self, key: _Key) -> _Held:
        """Under the lock: out of the hold, counted as being sent until :meth:`_send` ends."""
        entry = self._held.pop(key)
        self._bytes -= entry.size
        self._sending += 1
        self._sending_bytes += entry.size
        return entry

    def _send(self, entries: list[_Held]) -> None:
        """Each event with the records kept for its span since it was made, to its client."""
        joined = expired = 0
        for entry in entries:
            event = entry.event
            try:
                ai = event.ai
                records = genai_logs.claim(ai.trace_id, ai.span_id) if ai is not None else []
                if records:
                    event = self._mapper.with_records(event, records)
                    joined += 1
                else:
                    expired += 1
            except Exception:  # a record that cannot be mapped costs its content, not the event
                expired += 1
            entry.client.capture_raw(
                event.name,
                distinct_id=event.distinct_id,
                properties=event.properties,
                timestamp=event.timestamp,
            )
        if entries:
            with self._lock:
                self._sending -= len(entries)
                self._sending_bytes -= sum(entry.size for entry in entries)
                self.counters["ai_held_joined"] += joined
                self.counters["ai_held_expired"] += expired

    def _run(self) -> None:
        """The timer: send each held event when its wait ends."""
        while True:
            with self._lock:
                while not self._closed:
                    if self._held:
                        first = next(iter(self._held.values()))
                        remaining = first.deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._wake.wait(remaining)
                    else:
                        self._wake.wait()
                if self._closed:
                    return
                now = time.monotonic()
                due: list[_Held] = []
                while self._held and next(iter(self._held.values())).deadline <= now:
                    due.append(self._take(next(iter(self._held))))
            self._send(due)


def _held_size(event: SpanEvent) -> int:
    """The estimated bytes a held event keeps: its properties, and the span's attributes and
    events it is made again from (they may hold far more than the event shows)."""
    size = approx_json_size(event.properties)
    ai = event.ai
    if ai is not None:
        attributes = ai.attributes
        size += approx_json_size(attributes if isinstance(attributes, dict) else dict(attributes))
        for span_event in ai.events:
            data = getattr(span_event, "attributes", None)
            size += len(str(getattr(span_event, "name", ""))) + approx_json_size(
                dict(data) if data else {}
            )
    return size


def _waiting_key(event: SpanEvent) -> _Key | None:
    """The span ids of a generation that may still receive messages (no input, or no output
    for a call that did not fail); None for any other event."""
    ai = event.ai
    if ai is None or event.name != "$ai_generation" or not ai.trace_id or not ai.span_id:
        return None
    props = event.properties
    if "$ai_input" in props and ("$ai_output_choices" in props or props.get("$ai_is_error")):
        return None
    return (ai.trace_id, ai.span_id)
