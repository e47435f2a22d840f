"""PosthogPythonInstrumentor with the real posthog-python: one context, trace ids, one
``$exception``, delivery through posthog-python's client, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

posthog = pytest.importorskip("posthog")

import posthog.client as python_client  # noqa: E402
import posthog.contexts as python_contexts  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402

import posthog_otel  # noqa: E402
from posthog_otel import global_client  # noqa: E402
from posthog_otel.instrumentors.posthog_python import PosthogPythonInstrumentor  # noqa: E402
from posthog_otel.testing.capture_server import CaptureServer  # noqa: E402

_ORIGINALS = {
    "stack": python_contexts._context_stack,
    **{
        name: getattr(python_client, name)
        for name in (
            "add_context_tags",
            "exception_is_already_captured",
            "mark_exception_as_captured",
        )
    },
}


@pytest.fixture
def instrumented() -> Iterator[PosthogPythonInstrumentor]:
    instrumentor = PosthogPythonInstrumentor()
    instrumentor.instrument(route_events=False)
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture
def python_side(capture_server: CaptureServer) -> Iterator[Any]:
    client = posthog.Posthog("phc_pp", host=capture_server.url, sync_mode=True)
    yield client
    with contextlib.suppress(Exception):  # posthog-python 6.0's sync_mode cannot shut down
        client.shutdown()


def test_posthog_python_context_is_the_posthog_otel_scope(
    instrumented: PosthogPythonInstrumentor,
) -> None:
    with python_contexts.new_context():
        python_contexts.identify_context("u1")
        python_contexts.set_context_session("s1")
        python_contexts.tag("plan", "pro")
        assert posthog_otel.get_context_distinct_id() == "u1"
        assert posthog_otel.get_context_session_id() == "s1"
        if hasattr(posthog, "set_context_device_id"):  # posthog-python 6.x has none
            posthog.set_context_device_id("d1")
            assert posthog_otel.get_context_device_id() == "d1"
        assert posthog_otel.get_tags() == {"plan": "pro"}
        with posthog_otel.new_context():
            posthog_otel.tag("step", 2)
            posthog_otel.identify_context("u2")
            assert python_contexts.get_tags() == {"plan": "pro", "step": 2}
            assert python_contexts.get_context_distinct_id() == "u2"
            assert python_contexts.get_context_session_id() == "s1"
        with python_contexts.new_context(fresh=True):
            assert posthog_otel.get_tags() == {}
            assert posthog_otel.get_context_distinct_id() is None
        assert python_contexts.get_context_distinct_id() == "u1"
        assert python_contexts.get_tags() == {"plan": "pro"}
    assert posthog_otel.current_scope() is None
    assert python_contexts._get_current_context() is None


def test_client_methods_and_scoped_share_the_context(
    instrumented: PosthogPythonInstrumentor, python_side: Any
) -> None:
    @python_contexts.scoped()
    def work() -> dict[str, Any]:
        python_side.tag("job", "j1")
        python_side.identify_context("u3")
        return {"tags": posthog_otel.get_tags(), "id": posthog_otel.get_context_distinct_id()}

    if not hasattr(python_side, "tag"):
        pytest.skip("this posthog-python has no Client context methods")
    assert work() == {"tags": {"job": "j1"}, "id": "u3"}
    with python_side.new_context():
        posthog_otel.tag("from", "otel")
        assert python_side.get_tags() == {"from": "otel"}
        # the client given to Client.new_context is the scope's client
        assert posthog_otel.current_scope().client is python_side  # type: ignore[union-attr]


def test_posthog_python_setters_outside_a_context_stay_no_ops(
    instrumented: PosthogPythonInstrumentor,
) -> None:
    python_contexts.tag("x", 1)
    python_contexts.identify_context("nobody")
    assert python_contexts.get_tags() == {}
    assert posthog_otel.get_tags() == {}
    assert python_contexts.get_context_distinct_id() is None


def test_events_carry_the_active_span_and_the_shared_context(
    instrumented: PosthogPythonInstrumentor, python_side: Any, capture_server: CaptureServer
) -> None:
    tracer = TracerProvider().get_tracer("t")
    with posthog_otel.new_context():
        posthog_otel.identify_context("span-user")
        posthog_otel.tag("plan", "pro")
        with tracer.start_as_current_span("work") as span:
            python_side.capture("inside")
            python_side.capture("explicit", properties={"$trace_id": "mine"})
        python_side.capture("outside")
    events = {e["event"]: e for e in capture_server.wait_for_events(3)}
    ctx = span.get_span_context()
    inside = events["inside"]
    assert inside["distinct_id"] == "span-user"
    assert inside["properties"]["plan"] == "pro"
    assert inside["properties"]["$trace_id"] == format(ctx.trace_id, "032x")
    assert inside["properties"]["$span_id"] == format(ctx.span_id, "016x")
    assert events["explicit"]["properties"]["$trace_id"] == "mine"
    assert "$trace_id" not in events["outside"]["properties"]


def test_one_exception_across_posthog_python_and_posthog_otel(
    instrumented: PosthogPythonInstrumentor, python_side: Any, capture_server: CaptureServer
) -> None:
    ours = posthog_otel.Client("phc_pp", host=capture_server.url, sync_mode=True)
    try:
        # posthog-python first: ours skips it
        with (
            pytest.raises(ValueError) as first,
            python_contexts.new_context(capture_exceptions=True, client=python_side),
        ):
            raise ValueError("one")
        assert ours.capture_exception(first.value) is None
        # ours first: posthog-python skips it
        second = KeyError("two")
        assert ours.capture_exception(second) is not None
        assert python_side.capture_exception(second) is None
        ours.flush()
        bodies = [r.body for r in capture_server.requests if isinstance(r.body, dict)]
        events = [e for body in bodies for e in body.get("batch", [])]
        exceptions = [e for e in events if e["event"] == "$exception"]
        assert len(exceptions) == 2
    finally:
        ours.shutdown(1.0)


def test_posthog_otel_events_go_through_the_posthog_python_client(
    python_side: Any, capture_server: CaptureServer
) -> None:
    seen: list[str] = []

    def before_send(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event["event"])
        return event

    python_side.before_send = before_send
    previous = global_client.current_client()
    instrumentor = PosthogPythonInstrumentor()
    instrumentor.instrument(client=python_side)
    try:
        routed = global_client.get_client()
        assert routed is not previous
        tracer = TracerProvider().get_tracer("t")
        with posthog_otel.new_context():
            posthog_otel.identify_context("routed-user")
            with tracer.start_as_current_span("op"):
                routed.capture_raw("$span", distinct_id="routed-user", properties={"x": 1})
        routed.flush()
        event = capture_server.wait_for_events(1)[0]
        assert event["event"] == "$span"
        assert event["distinct_id"] == "routed-user"
        assert event["properties"]["x"] == 1
        assert seen == ["$span"]  # posthog-python's before_send ran on it
        # posthog-python's $lib: its client sent it
        assert event["properties"]["$lib"] == "posthog-python"
    finally:
        instrumentor.uninstrument()
    assert global_client.current_client() is previous


def test_without_a_posthog_python_client_posthog_otel_keeps_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(posthog, "default_client", None)
    monkeypatch.setattr(posthog, "api_key", None)
    monkeypatch.setattr(posthog, "project_api_key", None)
    previous = global_client.current_client()
    instrumentor = PosthogPythonInstrumentor()
    instrumentor.instrument()
    try:
        assert global_client.current_client() is previous
    finally:
        instrumentor.uninstrument()


def test_uninstrument_restores_posthog_python_exactly() -> None:
    instrumentor = PosthogPythonInstrumentor()
    instrumentor.instrument(route_events=False)
    assert python_contexts._context_stack is not _ORIGINALS["stack"]
    assert python_client.add_context_tags is not _ORIGINALS["add_context_tags"]
    instrumentor.uninstrument()
    assert python_contexts._context_stack is _ORIGINALS["stack"]
    for name, original in _ORIGINALS.items():
        if name != "stack":
            assert getattr(python_client, name) is original
    with python_contexts.new_context():
        python_contexts.tag("own", 1)
        assert python_contexts.get_tags() == {"own": 1}
        assert posthog_otel.get_tags() == {}  # two contexts again


def test_threads_under_contrib_threading_instrumentor(
    instrumented: PosthogPythonInstrumentor,
) -> None:
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor

    ThreadingInstrumentor().instrument()
    try:
        seen: dict[str, Any] = {}
        barrier = threading.Barrier(8)

        def worker(name: str) -> None:
            with python_contexts.new_context():
                python_contexts.identify_context(name)
                python_contexts.tag("worker", name)
                barrier.wait(5)

                def child() -> None:
                    seen[name] = (
                        posthog_otel.get_context_distinct_id(),
                        python_contexts.get_tags(),
                    )

                inner = threading.Thread(target=child)
                inner.start()
                inner.join()

        threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen == {f"w{i}": (f"w{i}", {"worker": f"w{i}"}) for i in range(8)}
    finally:
        ThreadingInstrumentor().uninstrument()


def test_200_asyncio_tasks_do_not_cross_talk(instrumented: PosthogPythonInstrumentor) -> None:
    async def request(i: int) -> tuple[Any, ...]:
        with python_contexts.new_context(fresh=True):
            python_contexts.identify_context(f"user-{i}")
            python_contexts.set_context_session(f"session-{i}")
            await asyncio.sleep(0)
            posthog_otel.tag("i", i)
            await asyncio.sleep(0.001 * (i % 5))

            async def sub() -> tuple[Any, ...]:
                await asyncio.sleep(0)
                return (python_contexts.get_context_distinct_id(), python_contexts.get_tags())

            inner = await asyncio.create_task(sub())
            return (
                posthog_otel.get_context_distinct_id(),
                python_contexts.get_context_session_id(),
                posthog_otel.get_tags(),
                inner,
            )

    async def main() -> list[tuple[Any, ...]]:
        return await asyncio.gather(*(request(i) for i in range(200)))

    results = asyncio.run(main())
    assert results == [
        (f"user-{i}", f"session-{i}", {"i": i}, (f"user-{i}", {"i": i})) for i in range(200)
    ]
    assert posthog_otel.current_scope() is None


def test_posthog_python_flags_read_the_context_set_through_posthog_otel(
    instrumented: PosthogPythonInstrumentor,
) -> None:
    from tests.support.flags_server import Flag, FlagsServer

    if not hasattr(python_contexts, "get_context_device_id"):
        pytest.skip("this posthog-python reads no device id from its context")
    with FlagsServer([Flag("beta", variant="b")]) as server:
        client = posthog.Posthog("phc_flags", host=server.url, sync_mode=True)
        try:
            with posthog_otel.new_context():
                posthog_otel.identify_context("ctx-user")
                posthog_otel.set_context_device_id("dev-1")
                with warnings.catch_warnings():  # newer versions deprecate it; still offered
                    warnings.simplefilter("ignore", DeprecationWarning)
                    assert client.get_feature_flag("beta", None) == "b"
            body = server.flag_requests[0].body
            assert body["distinct_id"] == "ctx-user"
            assert body["device_id"] == "dev-1"
        finally:
            with contextlib.suppress(Exception):
                client.shutdown()
