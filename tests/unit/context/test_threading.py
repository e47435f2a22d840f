"""Threads and executors: the PostHog context (and the whole OpenTelemetry Context) follows
``Thread``, ``Timer``, ``ThreadPoolExecutor.submit`` and ``loop.run_in_executor``, with and
without contrib's ThreadingInstrumentor; unhandled exceptions; ``propagate_context``."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.threading import ThreadingInstrumentor
from opentelemetry.sdk.trace import TracerProvider

import posthog_otel as posthog
import posthog_otel.instrumentors.threading as ours_module
from posthog_otel.instrumentors.threading import PosthogThreadingInstrumentor
from posthog_otel.testing import CapturedEvents, memory_client
from tests.support.routing import route_to


def _seen() -> dict[str, Any]:
    span = trace.get_current_span().get_span_context()
    return {
        "distinct_id": posthog.get_context_distinct_id(),
        "tags": posthog.get_tags(),
        "trace_id": span.trace_id if span.is_valid else None,
    }


def _in_thread(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(fn()))
    thread.start()
    thread.join()
    return out


def _in_timer() -> dict[str, Any]:
    out: dict[str, Any] = {}
    timer = threading.Timer(0.001, lambda: out.update(_seen()))
    timer.start()
    timer.join()
    return out


def _in_pool() -> dict[str, Any]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_seen).result()


def _in_executor() -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, _seen)

    return asyncio.run(main())


class _Subclass(threading.Thread):
    def __init__(self) -> None:
        super().__init__()
        self.out: dict[str, Any] = {}

    def run(self) -> None:  # Thread.run is not called
        self.out = _seen()


def _in_subclass() -> dict[str, Any]:
    thread = _Subclass()
    thread.start()
    thread.join()
    return thread.out


WAYS: dict[str, Callable[[], dict[str, Any]]] = {
    "thread": lambda: _in_thread(_seen),
    "timer": _in_timer,
    "pool": _in_pool,
    "run_in_executor": _in_executor,
}


@pytest.fixture
def tracer() -> Iterator[trace.Tracer]:
    provider = TracerProvider()
    route_to(provider)
    yield provider.get_tracer("test")
    route_to(None)


@pytest.fixture
def instrumented() -> Iterator[PosthogThreadingInstrumentor]:
    instrumentor = PosthogThreadingInstrumentor()
    instrumentor.instrument(capture_unhandled=False)
    yield instrumentor
    instrumentor.uninstrument()


def _run_in_request(tracer: trace.Tracer, way: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    with posthog.new_context(), tracer.start_as_current_span("request") as span:
        posthog.identify_context("user-t")
        posthog.tag("plan", "pro")
        seen = way()
        seen["expected_trace"] = span.get_span_context().trace_id
    return seen


@pytest.mark.parametrize("way", list(WAYS))
def test_context_follows_threads_and_pools(
    instrumented: PosthogThreadingInstrumentor, tracer: trace.Tracer, way: str
) -> None:
    seen = _run_in_request(tracer, WAYS[way])
    assert seen["distinct_id"] == "user-t"
    assert seen["tags"] == {"plan": "pro"}
    assert seen["trace_id"] == seen["expected_trace"]  # the whole Context, span included


@pytest.mark.parametrize("way", list(WAYS))
def test_without_instrumentation_threads_start_empty(tracer: trace.Tracer, way: str) -> None:
    seen = _run_in_request(tracer, WAYS[way])
    assert seen["distinct_id"] is None
    assert seen["trace_id"] is None


def test_thread_subclass_overriding_run_needs_propagate_context(
    instrumented: PosthogThreadingInstrumentor, tracer: trace.Tracer
) -> None:
    assert _run_in_request(tracer, _in_subclass)["distinct_id"] is None  # as with contrib

    class Wrapped(_Subclass):
        def start(self) -> None:
            self.run = posthog.propagate_context(self.run)  # type: ignore[method-assign]
            super().start()

    def in_wrapped() -> dict[str, Any]:
        thread = Wrapped()
        thread.start()
        thread.join()
        return thread.out

    assert _run_in_request(tracer, in_wrapped)["distinct_id"] == "user-t"


@pytest.mark.parametrize("contrib_first", [True, False])
def test_with_contrib_threading_instrumentor_ours_steps_aside(
    tracer: trace.Tracer, monkeypatch: pytest.MonkeyPatch, contrib_first: bool
) -> None:
    calls: list[object] = []
    real = ours_module.call_in_context

    def counting(ctx: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        return real(ctx, fn, *args, **kwargs)

    monkeypatch.setattr(ours_module, "call_in_context", counting)
    contrib, ours = ThreadingInstrumentor(), PosthogThreadingInstrumentor()
    first, second = (contrib, ours) if contrib_first else (ours, contrib)
    for instrumentor in (first, second):
        options = {"capture_unhandled": False} if instrumentor is ours else {}
        instrumentor.instrument(**options)
    try:
        for way in WAYS.values():
            seen = _run_in_request(tracer, way)
            assert seen["distinct_id"] == "user-t"
            assert seen["trace_id"] == seen["expected_trace"]
        assert calls == []  # contrib carried the Context; ours attached nothing
        thread = threading.Thread(target=lambda: None)
        with posthog.new_context():
            thread.start()
        thread.join()
        assert not hasattr(thread, "_posthog_otel_context")
    finally:
        second.uninstrument()
        first.uninstrument()
    # contrib gone: ours carries again (when it is still instrumented)
    ours.instrument(capture_unhandled=False)
    try:
        assert _run_in_request(tracer, WAYS["pool"])["distinct_id"] == "user-t"
        assert calls
    finally:
        ours.uninstrument()


def test_timer_with_its_own_start_method(
    tracer: trace.Tracer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """contrib's uninstrument leaves a plain copy of Thread.start in Timer: still carried."""
    leftover = vars(threading.Thread)["start"]
    monkeypatch.setattr(threading.Timer, "start", leftover, raising=False)
    instrumentor = PosthogThreadingInstrumentor()
    instrumentor.instrument(capture_unhandled=False)
    try:
        assert _run_in_request(tracer, _in_timer)["distinct_id"] == "user-t"
    finally:
        instrumentor.uninstrument()
    assert vars(threading.Timer)["start"] is leftover


def test_uninstrument_restores_threading() -> None:
    from posthog_otel.instrumentors._outbound import find_wrapper

    def ours_in_place() -> list[bool]:
        return [
            find_wrapper(vars(owner).get(name), wrapper)
            for owner, name, wrapper in ours_module._WRAPPED
        ]

    instrumentor = PosthogThreadingInstrumentor()
    instrumentor.instrument(capture_unhandled=False)
    assert sum(ours_in_place()) >= 4  # Thread.start/run, Timer.run, submit (+ Timer.start)
    instrumentor.uninstrument()
    assert not any(ours_in_place())
    with posthog.new_context():
        posthog.identify_context("user-u")
        assert _in_pool()["distinct_id"] is None


# -- unhandled exceptions ---------------------------------------------------------------------


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Stand-in previous hooks (so pytest's own thread-exception hook is not involved)."""
    called: list[str] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: called.append("threading"))
    monkeypatch.setattr(sys, "excepthook", lambda *exc: called.append("sys"))
    yield called


def test_unhandled_thread_exception_is_captured_with_the_threads_context(
    events: CapturedEvents, hooks: list[str]
) -> None:
    previous = threading.excepthook
    instrumentor = PosthogThreadingInstrumentor()
    instrumentor.instrument()
    try:
        assert threading.excepthook is not previous

        def boom() -> None:
            raise RuntimeError("worker died")

        with posthog.new_context():
            posthog.identify_context("user-x")
            posthog.tag("job", "import")
            thread = threading.Thread(target=boom, name="importer")
            thread.start()
            thread.join()
        stop = threading.Thread(target=lambda: sys.exit(3))
        stop.start()
        stop.join()
    finally:
        instrumentor.uninstrument()
    assert threading.excepthook is previous
    assert hooks == ["threading", "threading"]  # chained, also for SystemExit
    (exc,) = events.named("$exception")  # SystemExit is not captured
    assert exc["distinct_id"] == "user-x"
    assert exc["properties"]["job"] == "import"
    assert exc["properties"]["thread_name"] == "importer"
    (entry,) = exc["properties"]["$exception_list"]
    assert entry["type"] == "RuntimeError"
    assert entry["mechanism"]["handled"] is False


def test_unhandled_exception_in_a_context_is_captured_once(
    events: CapturedEvents, hooks: list[str]
) -> None:
    instrumentor = PosthogThreadingInstrumentor()
    instrumentor.instrument()
    try:

        def boom() -> None:
            with posthog.new_context():  # captures on exit, then the hook sees it captured
                posthog.identify_context("user-y")
                raise ValueError("once")

        thread = threading.Thread(target=boom)
        thread.start()
        thread.join()
    finally:
        instrumentor.uninstrument()
    assert len(events.named("$exception")) == 1
    assert hooks == ["threading"]


def test_sys_excepthook_is_chained_and_restored(events: CapturedEvents, hooks: list[str]) -> None:
    previous = sys.excepthook
    instrumentor = PosthogThreadingInstrumentor()
    instrumentor.instrument()
    try:
        try:
            raise LookupError("top level")
        except LookupError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        instrumentor.uninstrument()
    assert sys.excepthook is previous
    assert hooks == ["sys", "sys"]
    (exc,) = events.named("$exception")
    assert exc["properties"]["$exception_list"][0]["type"] == "LookupError"


def test_capture_unhandled_false_installs_no_hooks(
    events: CapturedEvents, hooks: list[str]
) -> None:
    before = (threading.excepthook, sys.excepthook)
    instrumentor = PosthogThreadingInstrumentor()
    instrumentor.instrument(capture_unhandled=False)
    try:
        assert (threading.excepthook, sys.excepthook) == before
    finally:
        instrumentor.uninstrument()


def test_autocapture_switched_off_on_the_client(hooks: list[str]) -> None:
    client, captured = memory_client(enable_exception_autocapture=False)
    instrumentor = PosthogThreadingInstrumentor()
    instrumentor.instrument(client=client)
    try:
        thread = threading.Thread(target=lambda: 1 / 0)
        thread.start()
        thread.join()
    finally:
        instrumentor.uninstrument()
    assert captured.named("$exception") == []
    assert hooks == ["threading"]


# -- propagate_context --------------------------------------------------------------------------


def test_propagate_context_runs_later_in_the_callers_context(tracer: trace.Tracer) -> None:
    async def async_seen() -> dict[str, Any]:
        return _seen()

    with posthog.new_context(), tracer.start_as_current_span("request") as span:
        posthog.identify_context("user-p")
        posthog.tag("plan", "pro")
        sync_fn = posthog.propagate_context(_seen)
        async_fn = posthog.propagate_context(async_seen)
        expected = span.get_span_context().trace_id
        # still inside: the callables run on a plain thread / another event loop
        out: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: out.update(sync_fn()))
        thread.start()
        thread.join()
        from_loop = _in_thread(lambda: asyncio.run(async_fn()))
    assert sync_fn.__name__ == "_seen"
    assert out["distinct_id"] == "user-p"
    assert out["trace_id"] == expected
    assert from_loop["distinct_id"] == "user-p"
    assert from_loop["tags"] == {"plan": "pro"}
    assert posthog.get_context_distinct_id() is None  # nothing left current here
