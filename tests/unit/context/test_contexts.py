"""PostHog v6 context semantics, carried by the OpenTelemetry Context."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context

import posthog_otel as posthog
from posthog_otel import context as contexts
from posthog_otel import global_client
from posthog_otel.context import get_tags, scoped
from posthog_otel.testing import CapturedEvents, memory_client

# -- the seed's examples ------------------------------------------------------------------


def test_seed_order_steps_example(events: CapturedEvents) -> None:
    def handle_order() -> None:
        with posthog.new_context():
            posthog.set_context_session("session-1")
            posthog.identify_context("user-1")
            validate_order()

    def validate_order() -> None:
        posthog.tag("order_steps", ["validate_order"])
        process_payment()

    def process_payment() -> None:
        posthog.tag("order_steps", [*get_tags()["order_steps"], "process_payment"])
        update_inventory()

    def update_inventory() -> None:
        posthog.tag("order_steps", [*get_tags()["order_steps"], "update_inventory"])
        posthog.capture("order_completed")

    handle_order()
    (event,) = events.named("order_completed")
    assert event["properties"]["order_steps"] == [
        "validate_order",
        "process_payment",
        "update_inventory",
    ]
    assert event["distinct_id"] == "user-1"
    assert event["properties"]["$session_id"] == "session-1"
    assert event["properties"]["$context_tags"] == ["order_steps"]
    assert "$process_person_profile" not in event["properties"]


def test_seed_nesting_example(events: CapturedEvents) -> None:
    with posthog.new_context():
        posthog.tag("some-key", "value-1")
        posthog.tag("some-other-key", "another-value")
        with posthog.new_context():
            posthog.tag("some-key", "value-2")
            posthog.capture("order_processed")
        posthog.capture("order_processed")
    inner, outer = events.named("order_processed")
    assert inner["properties"]["some-key"] == "value-2"
    assert inner["properties"]["some-other-key"] == "another-value"
    assert outer["properties"]["some-key"] == "value-1"
    assert outer["properties"]["some-other-key"] == "another-value"


def test_seed_scoped_fresh_request_handler(events: CapturedEvents) -> None:
    @scoped(fresh=True)
    def handle_request(headers: dict[str, str]) -> None:
        posthog.identify_context(headers["X-POSTHOG-DISTINCT-ID"])
        posthog.set_context_session(headers["X-POSTHOG-SESSION-ID"])
        posthog.capture("event_name")

    with posthog.new_context():
        posthog.identify_context("outer")
        posthog.tag("outer-tag", 1)
        handle_request({"X-POSTHOG-DISTINCT-ID": "u-9", "X-POSTHOG-SESSION-ID": "s-9"})
    (event,) = events.named("event_name")
    assert event["distinct_id"] == "u-9"
    assert event["properties"]["$session_id"] == "s-9"
    assert "outer-tag" not in event["properties"]


def test_explicit_distinct_id_wins_over_context(events: CapturedEvents) -> None:
    with posthog.new_context():
        posthog.identify_context("ctx-user")
        posthog.capture(
            distinct_id="user123", event="button_clicked", properties={"button_id": "123"}
        )
    (event,) = events.named("button_clicked")
    assert event["distinct_id"] == "user123"
    assert event["properties"]["button_id"] == "123"


# -- semantics ----------------------------------------------------------------------------


def test_fresh_context_inherits_nothing() -> None:
    with posthog.new_context():
        posthog.identify_context("u")
        posthog.set_context_session("s")
        posthog.set_context_window_id("w")
        posthog.tag("a", 1)
        with posthog.new_context(fresh=True):
            assert posthog.get_context_distinct_id() is None
            assert posthog.get_context_session_id() is None
            assert posthog.get_context_window_id() is None
            assert get_tags() == {}
        with posthog.new_context():
            assert posthog.get_context_distinct_id() == "u"
            assert posthog.get_context_session_id() == "s"
            assert posthog.get_context_window_id() == "w"
            assert get_tags() == {"a": 1}


def test_child_overrides_are_restored_on_exit() -> None:
    with posthog.new_context():
        posthog.identify_context("parent")
        posthog.tag("k", "parent")
        with posthog.new_context():
            posthog.identify_context("child")
            posthog.tag("k", "child")
            assert posthog.get_context_distinct_id() == "child"
            assert get_tags() == {"k": "child"}
        assert posthog.get_context_distinct_id() == "parent"
        assert get_tags() == {"k": "parent"}


def test_parent_changes_are_seen_by_an_open_child() -> None:
    with posthog.new_context():
        parent = contexts.current_scope()
        assert parent is not None
        with posthog.new_context():
            assert get_tags() == {}
            parent.set_tag("late", True)
            assert get_tags() == {"late": True}


def test_get_tags_returns_a_copy() -> None:
    with posthog.new_context():
        posthog.tag("k", "v")
        tags = get_tags()
        tags["k"] = "changed"
        assert get_tags() == {"k": "v"}


def test_setters_are_noops_outside_any_context() -> None:
    posthog.tag("k", "v")
    posthog.identify_context("u")
    posthog.set_context_session("s")
    posthog.set_context_window_id("w")
    assert get_tags() == {}
    assert posthog.get_context_distinct_id() is None
    assert posthog.get_context_session_id() is None
    assert posthog.current_scope() is None


def test_scope_is_stored_in_the_opentelemetry_context() -> None:
    with posthog.new_context() as scope:
        posthog.identify_context("u")
        assert contexts.current_scope(otel_context.get_current()) is scope
        detached = otel_context.Context()
        assert contexts.current_scope(detached) is None
    assert contexts.current_scope() is None


def test_new_context_keeps_other_context_values() -> None:
    token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        with posthog.new_context():
            assert baggage.get_baggage("tenant") == "acme"
        assert baggage.get_baggage("tenant") == "acme"
    finally:
        otel_context.detach(token)


def test_new_context_object_cannot_be_entered_twice() -> None:
    manager = posthog.new_context()
    with manager, pytest.raises(RuntimeError), manager:
        pass


# -- exceptions leaving a context ---------------------------------------------------------


def test_exception_leaving_context_is_captured_once_with_context_state(
    events: CapturedEvents,
) -> None:
    with pytest.raises(ValueError, match="boom"), posthog.new_context():
        posthog.identify_context("u1")
        posthog.tag("order", 7)
        with posthog.new_context():
            posthog.tag("inner", True)
            raise ValueError("boom")
    (event,) = events.named("$exception")
    assert event["distinct_id"] == "u1"
    assert event["properties"]["order"] == 7
    assert event["properties"]["inner"] is True
    (entry,) = event["properties"]["$exception_list"]
    assert entry["type"] == "ValueError"
    assert entry["value"] == "boom"
    assert entry["mechanism"]["handled"] is True  # as posthog-python reports a context's exception


def test_exception_capture_switched_off_per_context(events: CapturedEvents) -> None:
    with pytest.raises(KeyError), posthog.new_context(capture_exceptions=False):
        raise KeyError("x")
    assert events.named("$exception") == []


def test_exception_capture_switched_off_globally() -> None:
    client, captured = memory_client(enable_exception_autocapture=False)
    global_client.set_client(client)
    with pytest.raises(KeyError), posthog.new_context():
        raise KeyError("x")
    with pytest.raises(KeyError), posthog.new_context(capture_exceptions=True):
        raise KeyError("forced")
    assert [
        e["properties"]["$exception_list"][0]["value"] for e in captured.named("$exception")
    ] == ["'forced'"]


def test_exception_capture_uses_the_context_client(events: CapturedEvents) -> None:
    own, own_events = memory_client()
    with pytest.raises(RuntimeError), posthog.new_context(client=own):
        raise RuntimeError("mine")
    assert len(own_events.named("$exception")) == 1
    assert events.named("$exception") == []


def test_base_exceptions_are_not_captured(events: CapturedEvents) -> None:
    with pytest.raises(KeyboardInterrupt), posthog.new_context():
        raise KeyboardInterrupt
    assert events.named("$exception") == []


def test_explicitly_captured_exception_is_not_captured_again(events: CapturedEvents) -> None:
    with pytest.raises(ValueError), posthog.new_context():
        try:
            raise ValueError("once")
        except ValueError as exc:
            posthog.capture_exception(exc)
            raise
    assert len(events.named("$exception")) == 1


# -- scoped -------------------------------------------------------------------------------


def test_scoped_sync_function(events: CapturedEvents) -> None:
    @scoped
    def work() -> str | None:
        posthog.identify_context("in-scoped")
        return posthog.get_context_distinct_id()

    assert work() == "in-scoped"
    assert posthog.get_context_distinct_id() is None


def test_scoped_coroutine_captures_and_reraises(events: CapturedEvents) -> None:
    @scoped()
    async def work() -> None:
        posthog.identify_context("async-user")
        await asyncio.sleep(0)
        raise LookupError("async boom")

    with pytest.raises(LookupError):
        asyncio.run(work())
    (event,) = events.named("$exception")
    assert event["distinct_id"] == "async-user"


def test_scoped_generator_scope_is_not_visible_to_the_consumer(events: CapturedEvents) -> None:
    @scoped()
    def produce() -> Iterator[str | None]:
        posthog.identify_context("producer")
        yield posthog.get_context_distinct_id()
        yield posthog.get_context_distinct_id()

    seen: list[Any] = []
    with posthog.new_context():
        posthog.identify_context("consumer")
        for value in produce():
            seen.append((value, posthog.get_context_distinct_id()))
    assert seen == [("producer", "consumer"), ("producer", "consumer")]


def test_scoped_generator_send_throw_and_return_value() -> None:
    @scoped()
    def echo() -> Iterator[Any]:
        received = yield "ready"
        try:
            yield received
        except KeyError:
            yield "caught"
        return "done"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("hello") == "hello"
    assert gen.throw(KeyError("k")) == "caught"
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"


def test_scoped_generator_exception_is_captured(events: CapturedEvents) -> None:
    @scoped()
    def broken() -> Iterator[int]:
        posthog.tag("stage", "gen")
        yield 1
        raise ValueError("gen failed")

    with pytest.raises(ValueError):
        list(broken())
    (event,) = events.named("$exception")
    assert event["properties"]["stage"] == "gen"


def test_scoped_async_generator(events: CapturedEvents) -> None:
    @scoped()
    async def produce() -> AsyncIterator[str | None]:
        posthog.identify_context("agen")
        for _ in range(2):
            await asyncio.sleep(0)
            yield posthog.get_context_distinct_id()

    async def main() -> list[Any]:
        out = []
        with posthog.new_context():
            posthog.identify_context("consumer")
            async for value in produce():
                out.append((value, posthog.get_context_distinct_id()))
        return out

    assert asyncio.run(main()) == [("agen", "consumer"), ("agen", "consumer")]


def test_new_context_works_as_a_decorator() -> None:
    @posthog.new_context(fresh=True)
    def work() -> str | None:
        posthog.identify_context("decorated")
        return posthog.get_context_distinct_id()

    assert work() == "decorated"
    assert work() == "decorated"


# -- following OpenTelemetry context across threads and tasks -----------------------------


def test_thread_pool_sees_identity_with_threading_instrumentor() -> None:
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor

    instrumentor = ThreadingInstrumentor()
    instrumentor.instrument()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool, posthog.new_context():
            posthog.identify_context("request-user")
            posthog.tag("route", "/checkout")
            result = pool.submit(lambda: (posthog.get_context_distinct_id(), get_tags())).result()
        assert result == ("request-user", {"route": "/checkout"})
    finally:
        instrumentor.uninstrument()


def test_create_task_sees_parent_and_tasks_are_isolated() -> None:
    async def request(user: str, barrier: asyncio.Barrier) -> tuple[str | None, str | None]:
        with posthog.new_context(fresh=True):
            posthog.identify_context(user)
            await barrier.wait()  # every request is inside its context at the same time
            child = asyncio.create_task(asyncio.sleep(0, result=posthog.get_context_distinct_id()))
            await asyncio.sleep(0)
            return posthog.get_context_distinct_id(), await child

    async def main() -> list[tuple[str | None, str | None]]:
        barrier = asyncio.Barrier(50)
        return await asyncio.gather(*(request(f"user-{i}", barrier) for i in range(50)))

    results = asyncio.run(main())
    assert results == [(f"user-{i}", f"user-{i}") for i in range(50)]


def test_threads_never_see_each_others_identity() -> None:
    errors: list[str] = []
    barrier = threading.Barrier(16)

    def worker(i: int) -> None:
        with posthog.new_context():
            posthog.identify_context(f"t{i}")
            posthog.tag("worker", i)
            barrier.wait()
            for _ in range(200):
                if posthog.get_context_distinct_id() != f"t{i}" or get_tags() != {"worker": i}:
                    errors.append(f"worker {i} saw another identity")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_exit_from_another_contextvars_context_is_quiet_and_leaves_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def stream() -> AsyncIterator[int]:
        with posthog.new_context():
            posthog.identify_context("streaming-user")
            yield 1
            yield 2

    async def main() -> None:
        gen = stream()
        assert await gen.__anext__() == 1
        # Close the generator from another task (another contextvars Context).
        await asyncio.create_task(gen.aclose())
        assert posthog.get_context_distinct_id() is None

    caplog.set_level(logging.DEBUG)
    asyncio.run(main())
    gc.collect()
    assert posthog.current_scope() is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_exit_in_another_thread_does_not_leave_stale_scope(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = posthog.new_context()
    manager.__enter__()
    posthog.identify_context("left-open")
    result: list[Any] = []

    def finish_elsewhere() -> None:
        # A copy of the entering thread's context, so the scope is current here too.
        manager.__exit__(None, None, None)
        result.append(posthog.current_scope())

    ctx = __import__("contextvars").copy_context()
    thread = threading.Thread(target=ctx.run, args=(finish_elsewhere,))
    thread.start()
    thread.join()
    assert result == [None]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_starts_without_a_context() -> None:
    read_end, write_end = os.pipe()
    with posthog.new_context():
        posthog.identify_context("parent-user")
        pid = os.fork()
        if pid == 0:  # child
            try:
                seen = repr((posthog.get_context_distinct_id(), posthog.current_scope()))
                with posthog.new_context():
                    posthog.identify_context("child-user")
                    seen += "|" + str(posthog.get_context_distinct_id())
                os.write(write_end, seen.encode())
            finally:
                os._exit(0)
        os.close(write_end)
        _, status = os.waitpid(pid, 0)
        assert posthog.get_context_distinct_id() == "parent-user"
    with os.fdopen(read_end) as pipe:
        assert pipe.read() == "(None, None)|child-user"
    assert os.waitstatus_to_exitcode(status) == 0


def test_work_started_in_a_context_keeps_it_after_the_context_exits() -> None:
    import contextvars

    seen: list[Any] = []
    started = threading.Event()
    release = threading.Event()

    def later() -> None:
        started.set()
        release.wait(5)
        seen.append((posthog.get_context_distinct_id(), get_tags()))

    with posthog.new_context():
        posthog.identify_context("request-user")
        posthog.tag("order", 7)
        worker = threading.Thread(target=contextvars.copy_context().run, args=(later,))
        worker.start()
        started.wait(5)
    assert posthog.get_context_distinct_id() is None
    release.set()
    worker.join(5)
    assert seen == [("request-user", {"order": 7})]
