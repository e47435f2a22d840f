"""One export request's body -> PostHog events on a client's queue, and the answer to give.

Back-pressure is decided before anything is mapped, from an upper bound on the events the
request can produce and from the body's size: when they do not fit in the client's outgoing
queue (``max_queue_size`` events, ``max_queue_bytes`` bytes) the whole request is refused with
429 (the sender retries after ``Retry-After``) and nothing of it is queued, so a
retry never duplicates events nor loses exceptions to de-duplication. The app runs requests one
at a time per process, so the check and the queuing cannot interleave.

Usage::

    pipeline = Pipeline(settings)
    outcome = pipeline.process("traces", body, PROTOBUF, client)
    outcome.status, outcome.rejected, outcome.message

Decoding and mapping keep to one time budget (``MAP_BUDGET_SECONDS`` per request): items
left when it runs out are rejected (named in ``partial_success``), so no single request holds
the process for long. An item that cannot be mapped is rejected; one warning per request says how many, with
the first error's type and no traceback (input from outside must not flood the log).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..client import Client
from ..config import env_flag
from ..errors import FrameOptions
from ..otlp.decode import DecodedSpan, DecodeError, decode_logs, decode_traces
from ..spans.genai import AiOptions
from ..spans.mapping import ExportFamily, MappingOptions, SpanEvent, SpanMapper
from .genai_wait import GenAiWait
from .logs import LogMapper
from .settings import BridgeSettings

__all__ = ["Outcome", "Pipeline"]

_logger = logging.getLogger("posthog.otel.bridge")

MAP_BUDGET_SECONDS = 5.0
# AI events held for late content records (genai_wait): at most a quarter of the outgoing
# queue (they count as queued), so requests keep being admitted while the hold is full
_MAX_HELD_EVENTS = 10_000
_MAX_HELD_BYTES = 16 * 1024 * 1024
_CHECK_EVERY = 256  # items between clock reads


def _every_record(severity: int, maybe_marked: bool) -> bool:
    return True


class Outcome(NamedTuple):
    """How to answer: ``status`` 200 (``rejected`` items named in ``partial_success``),
    400 (``message`` says why) or 429 (retry later)."""

    status: int
    rejected: int = 0
    message: str = ""


class Pipeline:
    """Decodes, maps and queues; one per bridge process. Thread-safe counters only."""

    def __init__(self, settings: BridgeSettings) -> None:
        frames = FrameOptions(project_root=None, local_source=False)
        # LLM analytics: GenAI spans become AI events unless POSTHOG_OTEL_CAPTURE_AI=false
        ai = AiOptions(
            enabled=env_flag("POSTHOG_OTEL_CAPTURE_AI") is not False,
            privacy_mode=env_flag("POSTHOG_OTEL_AI_PRIVACY_MODE") is True,
        )
        self.spans = SpanMapper(
            MappingOptions(capture_spans=settings.capture_spans, frame_options=frames, ai=ai)
        )
        # a generation without its messages waits briefly for content records sent after it
        self.genai_wait = GenAiWait(
            self.spans,
            wait=settings.genai_log_wait,
            max_events=min(_MAX_HELD_EVENTS, max(1, settings.max_queue_size // 4)),
            max_bytes=min(_MAX_HELD_BYTES, settings.max_queue_bytes // 4),
        )
        self.logs = LogMapper(
            self.spans, settings.log_level, on_genai_record=self.genai_wait.content_arrived
        )
        self.max_attributes = settings.max_attributes
        self._lock = threading.Lock()
        self._admission = threading.Lock()
        self._reserved = 0  # events that requests being mapped may still queue
        self._reserved_bytes = 0
        self.counters = {
            "spans": 0,
            "log_records": 0,
            "rejected": 0,
            "events": 0,
            "throttled_requests": 0,
            "slow_requests": 0,
            "over_time_requests": 0,
            "bad_requests": 0,
        }

    def close(self) -> int:
        """Send the AI events still held for content records (bridge shutdown); how many."""
        return self.genai_wait.close()

    def count(self, **amounts: int) -> None:
        """Add to the counters shown at /healthz."""
        with self._lock:
            for name, amount in amounts.items():
                self.counters[name] += amount

    def process(
        self, signal: str, body: bytes | bytearray, content_type: str, client: Client
    ) -> Outcome:
        """Handle one request body of ``signal`` (``"traces"`` or ``"logs"``). Never raises."""
        try:
            return self._process(signal, body, content_type, client)
        except Exception as exc:  # a bug must cost one answer, not the process
            _logger.error(
                "posthog-otel bridge failed on a %s request: %s: %s",
                signal,
                type(exc).__name__,
                str(exc)[:200],
            )
            _logger.debug("posthog-otel bridge failure", exc_info=True)
            return Outcome(500, message="internal error in posthog-otel bridge")

    def _process(
        self, signal: str, body: bytes | bytearray, content_type: str, client: Client
    ) -> Outcome:
        items: Sequence[Any]
        mapper: Callable[[Any], list[SpanEvent]]
        deadline = time.monotonic() + MAP_BUDGET_SECONDS
        try:
            if signal == "traces":
                spans = decode_traces(
                    body,
                    content_type,
                    self.spans.may_yield,
                    self.max_attributes,
                    deadline=deadline,
                )
                batch: Any = spans
                family = ExportFamily(spans.items)  # children inherit identity from the root
                items = spans.items
                mapper = functools.partial(self.spans.events_for, family=family)
                bound = len(items) + spans.exception_events
                self.count(spans=spans.total)
            else:
                want = _every_record if self.logs.keeps_genai(body) else self.logs.may_yield
                logs = decode_logs(body, content_type, want, self.max_attributes, deadline=deadline)
                batch = logs
                items, mapper = logs.items, self.logs.events_for
                bound = 2 * len(items)
                self.count(log_records=logs.total)
        except DecodeError as exc:
            self.count(bad_requests=1)
            return Outcome(400, message=str(exc))

        rejected: int = batch.rejected
        message: str = batch.first_error or ""
        capacity = client.settings.max_queue_size
        # Admission and reservation are one step: requests mapped at the same time (small ones
        # inline, large ones on the executor) each count what the others have reserved, so
        # together they never queue more than the queue holds (which would drop events).
        with self._admission:
            stats = client.stats() if bound else None
            # held AI events (genai_wait) will be queued too: they count as queued
            held, held_bytes = self.genai_wait.held() if stats else (0, 0)
            queued = (stats["queued"] if stats else 0) + self._reserved + held
            queued_bytes = (
                (stats.get("queued_bytes", 0) if stats else 0) + self._reserved_bytes + held_bytes
            )
            if queued_bytes and queued_bytes + len(body) > client.settings.max_queue_bytes:
                self.count(throttled_requests=1)
                return Outcome(429, message="the bridge's outgoing PostHog queue is full (bytes)")
            if queued + bound > capacity:
                if queued > 0:
                    self.count(throttled_requests=1)
                    return Outcome(429, message="the bridge's outgoing PostHog queue is full")
                # This request alone yields more events than the queue holds: take what fits.
                fits = _prefix_fitting(items, capacity)
                rejected += len(items) - fits
                message = message or (
                    f"a request may produce at most {capacity} events (the bridge's "
                    "--max-queue-size); send smaller batches"
                )
                items = items[:fits]
                bound = min(bound, capacity)
            self._reserved += bound
            self._reserved_bytes += len(body)
        try:
            return self._queue(items, mapper, client, signal, deadline, rejected, message)
        finally:
            with self._admission:
                self._reserved -= bound
                self._reserved_bytes -= len(body)

    def _queue(
        self,
        items: Sequence[Any],
        mapper: Callable[[Any], list[SpanEvent]],
        client: Client,
        signal: str,
        deadline: float,
        rejected: int,
        message: str,
    ) -> Outcome:
        capture = client.capture_raw
        hold = self.genai_wait.hold if self.genai_wait.enabled else None
        events = 0
        failed = 0
        first_failure = ""
        for index, item in enumerate(items):
            if index % _CHECK_EVERY == _CHECK_EVERY - 1 and time.monotonic() > deadline:
                left = len(items) - index
                rejected += left
                self.count(over_time_requests=1)
                message = message or (
                    f"the request took over {MAP_BUDGET_SECONDS:g} s to map; "
                    f"{left} items not processed (send smaller batches)"
                )
                break
            try:
                produced = mapper(item)
            except Exception as exc:
                failed += 1
                first_failure = first_failure or f"{type(exc).__name__}: {str(exc)[:200]}"
                rejected += 1
                message = message or "an item could not be mapped to events"
                continue
            for event in produced:
                if hold is not None and event.ai is not None and hold(event, client):
                    continue  # sent by genai_wait: with its late records, or when the wait ends
                capture(
                    event.name,
                    distinct_id=event.distinct_id,
                    properties=event.properties,
                    timestamp=event.timestamp,
                )
            events += len(produced)
        if signal == "logs":
            self.genai_wait.send_joined()  # held generations whose records were in this request
        if failed:
            _logger.warning(
                "posthog-otel bridge could not map %d %s item(s) of a request (first: %s)",
                failed,
                signal,
                first_failure,
            )
        self.count(rejected=rejected, events=events)
        return Outcome(200, rejected, message if rejected else "")


def _prefix_fitting(items: Sequence[Any], capacity: int) -> int:
    """How many leading items fit when each may yield 1 + its exception events (spans) or 2
    (log records) events."""
    used = 0
    for index, item in enumerate(items):
        if isinstance(item, DecodedSpan):
            used += 1 + sum(1 for event in item.events if event.name == "exception")
        else:
            used += 2
        if used > capacity:
            return index
    return len(items)
