"""The one bounded queue (WorkQueue): drops, batching, flush and shutdown deadlines, fork, registry."""

from __future__ import annotations

import functools
import gc
import json
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator

import pytest

from posthog_otel.delivery.pending import flush_pending
from posthog_otel.delivery.queue import WorkQueue, live_queues
from tests.support.waiting import wait_until


class Recorder:
    """A handler that records batches and blocks on items named in ``gates`` until opened."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.gates: dict[str, threading.Event] = {}
        self.entered: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def gate(self, item: str) -> threading.Event:
        self.entered[item] = threading.Event()
        self.gates[item] = threading.Event()
        return self.gates[item]

    def __call__(self, batch: list[str]) -> None:
        self.threads.add(threading.current_thread().name)
        for item in batch:
            if item in self.gates:
                self.entered[item].set()
                self.gates[item].wait(10)
        with self._lock:
            self.batches.append(list(batch))

    @property
    def items(self) -> list[str]:
        with self._lock:
            return [item for batch in self.batches for item in batch]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    handler = Recorder()
    yield handler
    for gate in handler.gates.values():
        gate.set()  # never leave a queue thread blocked after a failed test


def _logged(caplog: pytest.LogCaptureFixture, message: str, times: int) -> bool:
    return sum(r.getMessage() == message for r in caplog.records) == times


def _queue(handler: Callable[[list[str]], None], **options: object) -> WorkQueue[str]:
    return WorkQueue("test-queue", handler, **options)  # type: ignore[arg-type]


def test_concurrent_puts_never_exceed_the_bound_and_every_drop_is_counted(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    queue = _queue(recorder, max_size=100)
    release = recorder.gate("first")
    assert queue.put("first")
    assert recorder.entered["first"].wait(5)  # the thread holds "first"; the queue is empty
    accepted: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def producer(n: int) -> None:
        mine = [f"{n}-{i}" for i in range(500)]
        start.wait()
        taken = [item for item in mine if queue.put(item)]
        with lock:
            accepted.extend(taken)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = queue.counts()
    assert len(accepted) == 100  # exactly the bound, although 16 threads raced for it
    assert counts.accepted == 101 and counts.dropped == 16 * 500 - 100
    assert counts.offered == 1 + 16 * 500
    assert counts.pending == 101
    full = [r for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(full) == 1  # one warning for the whole burst
    release.set()
    assert queue.flush(5)
    assert sorted(recorder.items) == sorted(["first", *accepted])
    assert queue.counts().pending == 0
    assert queue.shutdown(1)


def test_drops_warn_again_only_after_the_queue_drained(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    queue = _queue(recorder, max_size=1, drained_warning="drained; %d lost")
    for drained, burst in enumerate(("a", "b"), start=1):
        release = recorder.gate(burst)
        assert queue.put(burst)
        assert recorder.entered[burst].wait(5)
        assert queue.put(f"{burst}-queued")
        assert not queue.put(f"{burst}-dropped-1")
        assert not queue.put(f"{burst}-dropped-2")
        release.set()
        assert queue.flush(5)
        wait_until(
            functools.partial(_logged, caplog, "drained; 2 lost", drained),
            timeout=5,
            interval=0.01,
            what=f"'drained; 2 lost' logged {drained} times",
        )
    messages = [r.getMessage() for r in caplog.records]
    assert sum("queue is full" in m for m in messages) == 2  # once per burst
    assert messages.count("drained; 2 lost") == 2
    assert queue.counts().dropped == 4
    queue.shutdown(1)


def test_a_partial_batch_waits_for_the_interval_unless_flushed(recorder: Recorder) -> None:
    queue = _queue(recorder, max_size=100, batch_size=10, interval=60)
    for item in ("1", "2", "3"):
        assert queue.put(item)
    time.sleep(0.2)
    assert recorder.batches == []  # under batch_size, and the interval is far away
    assert queue.flush(5)
    assert recorder.batches == [["1", "2", "3"]]
    for i in range(25):
        queue.put(str(i))
    assert queue.flush(5)
    assert [len(b) for b in recorder.batches[1:]] == [10, 10, 5]  # never over batch_size
    queue.shutdown(1)


def test_a_partial_batch_goes_when_the_interval_elapses(recorder: Recorder) -> None:
    queue = _queue(recorder, max_size=100, batch_size=10, interval=0.2)
    started = time.monotonic()
    queue.put("alone")
    wait_until(lambda: recorder.batches, timeout=5, interval=0.01, what="a batch")
    assert recorder.batches == [["alone"]]
    assert time.monotonic() - started >= 0.15
    queue.shutdown(1)


def test_flush_waits_only_for_what_was_accepted_before_it(recorder: Recorder) -> None:
    queue = _queue(recorder, max_size=100)
    release_a = recorder.gate("a")
    recorder.gate("b")  # "b" stays blocked for the whole test
    queue.put("a")
    assert recorder.entered["a"].wait(5)
    result: list[bool] = []
    flusher = threading.Thread(target=lambda: result.append(queue.flush(5)))
    flusher.start()
    time.sleep(0.05)
    queue.put("b")  # accepted after the flush began: not its business
    release_a.set()
    flusher.join(6)
    assert result == [True]
    assert recorder.items == ["a"]


def test_flush_keeps_its_deadline(recorder: Recorder) -> None:
    queue = _queue(recorder, max_size=100)
    release = recorder.gate("slow")
    queue.put("slow")
    started = time.monotonic()
    assert queue.flush(0.2) is False
    assert 0.15 <= time.monotonic() - started < 1.0
    release.set()
    assert queue.flush(5) is True


def test_shutdown_keeps_its_deadline_and_counts_what_it_leaves(recorder: Recorder) -> None:
    queue = _queue(recorder, max_size=100)
    release = recorder.gate("stuck")
    queue.put("stuck")
    assert recorder.entered["stuck"].wait(5)
    for item in ("x", "y", "z"):
        queue.put(item)
    started = time.monotonic()
    assert queue.shutdown(0.2) is False
    assert time.monotonic() - started < 1.0
    assert not queue.put("late")
    counts = queue.counts()
    assert counts.discarded == 3 and counts.refused == 1
    assert counts.pending == 1  # "stuck" is still the handler's
    release.set()
    # the thread stops after its batch
    wait_until(lambda: not queue.running, timeout=5, interval=0.01, what="the thread to stop")
    assert recorder.items == ["stuck"]
    assert queue.counts().pending == 0


def test_shutdown_delivers_everything_in_time_and_stops_the_thread(recorder: Recorder) -> None:
    queue = _queue(recorder, max_size=100, batch_size=50, interval=60)
    for i in range(30):
        queue.put(str(i))
    assert queue.shutdown(5) is True
    assert recorder.items == [str(i) for i in range(30)]
    assert not queue.running
    assert queue.counts().discarded == 0


def test_a_failing_handler_is_logged_and_the_queue_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def handler(batch: list[str]) -> None:
        if batch == ["bad"]:
            raise RuntimeError("boom")
        seen.extend(batch)

    queue = _queue(handler, max_size=10)
    queue.put("bad")
    queue.put("good")
    assert queue.flush(5)
    assert seen == ["good"]
    assert any("failed on a batch" in r.getMessage() and r.exc_info for r in caplog.records)
    queue.shutdown(1)


def test_run_now_handles_on_the_callers_thread_until_shutdown(recorder: Recorder) -> None:
    queue = _queue(recorder, max_size=10)
    assert queue.run_now(["now"])
    assert recorder.threads == {threading.current_thread().name}
    assert not queue.running  # no thread was needed
    assert queue.shutdown(1)
    assert not queue.run_now(["late"])
    counts = queue.counts()
    assert (counts.direct, counts.refused, counts.offered) == (1, 1, 2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_empty_and_handles_its_own_items(recorder: Recorder) -> None:
    forks: list[int] = []
    queue = WorkQueue("test-queue", recorder, max_size=10, after_fork=lambda: forks.append(1))
    release = recorder.gate("parent-1")
    queue.put("parent-1")
    assert recorder.entered["parent-1"].wait(5)
    queue.put("parent-2")  # queued in the parent while its thread is busy
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            before = queue.counts()
            queue.put("child")
            ok = queue.flush(5)
            report = {
                "before": [before.accepted, before.pending],
                "ok": ok,
                "items": recorder.items,
                "forks": len(forks),
            }
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        child = json.loads(pipe.read())
    assert child == {"before": [0, 0], "ok": True, "items": ["child"], "forks": 1}
    assert forks == []  # the hook runs in the child only
    release.set()
    assert queue.flush(5)
    assert recorder.items == ["parent-1", "parent-2"]  # the parent keeps and handles its own
    queue.shutdown(1)


def test_the_registry_lists_live_queues_feeders_first(recorder: Recorder) -> None:
    events = _queue(recorder, max_size=10, flush_order=1)
    spans = _queue(recorder, max_size=10, flush_order=0)
    listed = live_queues()
    assert spans in listed and events in listed
    assert listed.index(spans) < listed.index(events)
    gone = weakref.ref(_queue(recorder, max_size=10))
    gc.collect()
    assert gone() is None  # the registry does not keep a queue alive
    assert len(live_queues()) == len(listed)


def test_flush_pending_drains_feeders_before_the_queues_they_feed(recorder: Recorder) -> None:
    gc.collect()  # stale queues of earlier tests out of the registry
    events = WorkQueue(
        "test-events", recorder, max_size=100, batch_size=50, interval=60, flush_order=1
    )
    slow: list[str] = []

    def to_events(batch: list[str]) -> None:
        time.sleep(0.05)  # the events appear only after the span queue was asked to flush
        slow.extend(batch)
        for item in batch:
            events.put(f"event-{item}")

    spans = WorkQueue("test-spans", to_events, max_size=100, batch_size=1, flush_order=0)
    for i in range(3):
        spans.put(str(i))
    flush_pending(timeout=10)  # its result also covers other tests' queues: not ours to judge
    assert recorder.items == ["event-0", "event-1", "event-2"]
    spans.shutdown(1)
    events.shutdown(1)


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        _queue(lambda batch: None, max_size=0)
    with pytest.raises(ValueError):
        _queue(lambda batch: None, max_size=1, batch_size=0)


def test_a_byte_bound_refuses_what_would_exceed_it_until_the_bytes_are_handled() -> None:
    release = threading.Event()
    handled: list[str] = []

    def handler(batch: list[str]) -> None:
        release.wait(10)
        handled.extend(batch)

    queue: WorkQueue[str] = WorkQueue(
        "bytes-test", handler, max_size=1000, batch_size=1, max_bytes=100, size_of=len
    )
    try:
        assert queue.put("a" * 40)  # taken by the thread: still held while being handled
        wait_until(lambda: queue.counts().pending == 1)
        assert queue.put("b" * 40)
        assert not queue.put("c" * 40)  # 120 > 100
        assert queue.put("d" * 20)  # exactly 100
        assert not queue.put("e")
        assert not queue.put("f" * 101)  # larger than the whole bound
        counts = queue.counts()
        assert (counts.accepted, counts.dropped, counts.pending_bytes) == (3, 3, 100)
        release.set()
        assert queue.flush(5)
        assert queue.counts().pending_bytes == 0
        assert queue.put("g" * 100)
        assert queue.flush(5)
        assert handled == ["a" * 40, "b" * 40, "d" * 20, "g" * 100]
    finally:
        release.set()
        queue.shutdown(2)


def test_a_byte_bound_needs_a_size_function() -> None:
    with pytest.raises(ValueError, match="size_of"):
        WorkQueue("bytes-test", lambda batch: None, max_size=10, max_bytes=100)
