"""Celery: PostHog context from producer to real worker processes and back, failures captured
once, lifecycle events, posthog-python on either side, and contrib's CeleryInstrumentor in
either order.

Workers are real ``celery worker`` processes on a filesystem broker (a folder per worker);
events are checked at a loopback capture server. The producer is this process.
"""

from __future__ import annotations

import copy
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, signals
from opentelemetry import baggage, propagate
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import posthog_otel as posthog
from posthog_otel import Client
from posthog_otel.instrumentors.celery import CONTEXT_TAGS_HEADER, PosthogCeleryInstrumentor
from posthog_otel.propagation.propagator import PosthogPropagator
from posthog_otel.testing import CapturedEvents, memory_client
from posthog_otel.testing.capture_server import CaptureServer
from tests.support.apps.celery_tasks import make_app
from tests.support.e2e import start_celery_worker
from tests.support.procs import stop
from tests.support.routing import route_to
from tests.support.waiting import wait_for_events

WORKER_MODES = ("ours", "posthog_python", "contrib_first", "ours_first")
TIMEOUT = 30.0


class Workers:
    """One capture server and one worker process (and broker folder) per mode."""

    def __init__(self, server: CaptureServer, root: Path) -> None:
        self.server = server
        self.root = root
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.apps: dict[str, Celery] = {}

    def start(self, mode: str) -> None:
        broker = self.root / mode
        self.apps[mode] = make_app(broker)
        pool = ("-P", "prefork", "-c", "1") if mode == "ours" else ("-P", "solo")
        self.procs[mode] = start_celery_worker(
            self.server, broker, mode, pool, POSTHOG_OTEL_CELERY_EVENTS="true"
        )

    def send(self, mode: str, name: str, *args: Any, **options: Any) -> str:
        return str(self.apps[mode].send_task(name, args=list(args), **options).id)

    def wait(
        self, predicate: Callable[[dict[str, Any]], bool], count: int = 1
    ) -> list[dict[str, Any]]:
        workers = {f"worker {mode}": proc for mode, proc in self.procs.items()}
        return wait_for_events(self.server, predicate, count, timeout=TIMEOUT, procs=workers)

    def settle(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """The matching events after a short quiet period (to see that nothing more comes)."""
        time.sleep(0.7)
        return [e for e in self.server.events if predicate(e)]

    def stop(self) -> None:
        for proc in self.procs.values():  # all shut down at once
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            stop(proc)


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    with CaptureServer() as server:
        pool = Workers(server, tmp_path_factory.mktemp("brokers"))
        for mode in WORKER_MODES:  # all start at once: the tests wait only for the slowest
            pool.start(mode)
        try:
            yield pool
        finally:
            pool.stop()


@pytest.fixture
def producer(workers: Workers) -> Iterator[Client]:
    """Our producer side in this process, its own events going to the capture server."""
    client = Client("phc_producer", host=workers.server.url, flush_interval=0.05)
    instrumentor = PosthogCeleryInstrumentor()
    instrumentor.instrument(client=client, capture_task_events=True)
    try:
        yield client
    finally:
        instrumentor.uninstrument()
        client.shutdown(2)


def _user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def _of(distinct_id: str, event: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["distinct_id"] == distinct_id and e["event"] == event


# -- our producer, our worker ------------------------------------------------------------------


def test_context_travels_to_the_worker_and_its_threads(workers: Workers, producer: Client) -> None:
    user = _user()
    with posthog.new_context():
        posthog.identify_context(user)
        posthog.set_context_session("sess-1")
        posthog.tag("plan", "pro")
        task_id = workers.send("ours", "tests.record", "a")
    producer.flush(5)

    (ran,) = workers.wait(_of(user, "task_ran"))
    props = ran["properties"]
    assert props["$session_id"] == "sess-1"
    assert props["plan"] == "pro"
    assert props["celery_task_id"] == task_id
    assert props["celery_task_name"] == "tests.record"
    assert props["seen_distinct_id"] == user
    assert props["$lib"] == "posthog-otel"
    # a ThreadPoolExecutor inside the task (threading instrumentor, in a prefork child)
    (thread,) = workers.wait(_of(user, "thread_ran"))
    assert thread["properties"]["seen_distinct_id"] == user
    assert thread["properties"]["celery_task_id"] == task_id

    (published,) = workers.wait(_of(user, "celery task published"))
    assert published["properties"]["celery_task_id"] == task_id
    assert published["properties"]["celery_task_name"] == "tests.record"
    assert published["properties"]["celery_state"] == "published"
    assert published["properties"]["plan"] == "pro"
    (started,) = workers.wait(_of(user, "celery task started"))
    (success,) = workers.wait(_of(user, "celery task success"))
    for event, state in ((started, "started"), (success, "success")):
        assert event["properties"]["celery_state"] == state
        assert event["properties"]["celery_task_id"] == task_id
        assert event["properties"]["$session_id"] == "sess-1"
        assert event["properties"]["celery_version"]
        assert event["properties"]["celery_hostname"]
    assert "celery_task_duration_ms" not in started["properties"]
    assert success["properties"]["celery_task_duration_ms"] >= 0


def test_failure_is_captured_once_with_the_task_context(workers: Workers, producer: Client) -> None:
    user = _user()
    with posthog.new_context():
        posthog.identify_context(user)
        posthog.tag("plan", "pro")
        task_id = workers.send("ours", "tests.fail", "b")

    (failure,) = workers.wait(_of(user, "celery task failure"))
    assert failure["properties"]["error_type"] == "ValueError"
    assert failure["properties"]["error_message"] == "card declined: b"
    assert failure["properties"]["celery_task_duration_ms"] >= 0
    (exc,) = workers.settle(_of(user, "$exception"))
    props = exc["properties"]
    assert props["celery_task_id"] == task_id
    assert props["celery_task_name"] == "tests.fail"
    assert props["plan"] == "pro"
    assert props["step"] == "charging"  # tagged inside the task
    (entry,) = props["$exception_list"]
    assert entry["type"] == "ValueError"
    assert entry["mechanism"]["handled"] is False
    assert entry["stacktrace"]["frames"][-1]["function"] == "fail"


def test_logged_and_reraised_exception_is_one_event(workers: Workers, producer: Client) -> None:
    user = _user()
    with posthog.new_context():
        posthog.identify_context(user)
        workers.send("ours", "tests.log_and_fail", "c")
    workers.wait(_of(user, "celery task failure"))
    (exc,) = workers.settle(_of(user, "$exception"))
    assert exc["properties"]["log_message"] == "lookup failed for c"
    assert exc["properties"]["logger_name"] == "tests.celery_tasks"
    assert exc["properties"]["$exception_list"][0]["type"] == "KeyError"


def test_retry_event_and_the_retried_run_keep_the_context(
    workers: Workers, producer: Client
) -> None:
    user = _user()
    with posthog.new_context():
        posthog.identify_context(user)
        task_id = workers.send("ours", "tests.flaky", "d")
    (done,) = workers.wait(_of(user, "flaky_done"))
    assert done["properties"]["celery_task_id"] == task_id
    (retry,) = workers.wait(_of(user, "celery task retry"))
    assert "upstream slow" in retry["properties"]["celery_reason"]
    assert retry["properties"]["celery_retry_count"] == 0
    assert not workers.settle(_of(user, "$exception"))  # a retry is not an error


def test_tasks_enqueued_by_tasks_carry_the_context_on(workers: Workers, producer: Client) -> None:
    user = _user()
    with posthog.new_context():
        posthog.identify_context(user)
        posthog.set_context_session("sess-fan")
        parent_id = workers.send("ours", "tests.fan_out", "e")
    (child,) = workers.wait(_of(user, "task_ran"))
    props = child["properties"]
    assert props["label"] == "e-child"
    assert props["stage"] == "fan_out"  # tagged in the parent task
    assert props["$session_id"] == "sess-fan"
    assert props["celery_task_id"] != parent_id  # the child's own id wins
    publishes = workers.wait(_of(user, "celery task published"), count=2)
    assert {e["properties"]["celery_task_name"] for e in publishes} == {
        "tests.fan_out",
        "tests.record",
    }


# -- posthog-python on either side ---------------------------------------------------------------


def test_posthog_python_style_headers_only(workers: Workers) -> None:
    """A producer that writes only X-POSTHOG-* headers, nested as posthog-python does."""
    user = _user()
    headers = {
        "X-POSTHOG-DISTINCT-ID": user,
        "X-POSTHOG-SESSION-ID": "py-session",
        CONTEXT_TAGS_HEADER: '{"plan": "team", "seats": 3}',
    }
    task_id = workers.send("ours", "tests.record", "py", headers={"headers": headers})
    (ran,) = workers.wait(_of(user, "task_ran"))
    props = ran["properties"]
    assert props["$session_id"] == "py-session"
    assert props["plan"] == "team"
    assert props["seats"] == 3
    assert props["celery_task_id"] == task_id


def test_posthog_python_producer(workers: Workers) -> None:
    posthog_python = pytest.importorskip("posthog")
    from posthog.integrations.celery import PosthogCeleryIntegration

    client = posthog_python.Client("phc_py", host=workers.server.url, disabled=True)
    integration = PosthogCeleryIntegration(client=client, capture_task_lifecycle_events=False)
    integration.instrument()
    user = _user()
    try:
        with posthog_python.new_context(client=client):
            posthog_python.identify_context(user)
            posthog_python.set_context_session("py-session")
            posthog_python.tag("plan", "enterprise")
            workers.send("ours", "tests.record", "from-posthog-python")
    finally:
        integration.uninstrument()
    (ran,) = workers.wait(_of(user, "task_ran"))
    assert ran["properties"]["$session_id"] == "py-session"
    assert ran["properties"]["plan"] == "enterprise"
    assert ran["properties"]["celery_task_name"] == "tests.record"


def test_posthog_python_worker_reads_our_headers(workers: Workers, producer: Client) -> None:
    user = _user()
    with posthog.new_context():
        posthog.identify_context(user)
        posthog.set_context_session("otel-session")
        posthog.tag("plan", "pro")
        workers.send("posthog_python", "tests.record", "to-posthog-python")
    (ran,) = workers.wait(lambda e: e["event"] == "task_ran" and e["distinct_id"] == user)
    props = ran["properties"]
    assert props["$lib"] == "posthog-python"
    assert props["$session_id"] == "otel-session"
    assert props["plan"] == "pro"


# -- with contrib's CeleryInstrumentor -----------------------------------------------------------


@pytest.mark.parametrize("mode", ["contrib_first", "ours_first"])
def test_with_contrib_celery_instrumentor(workers: Workers, producer: Client, mode: str) -> None:
    user = _user()
    with posthog.new_context():
        posthog.identify_context(user)
        posthog.tag("plan", "pro")
        ok_id = workers.send(mode, "tests.record", "contrib")
        fail_id = workers.send(mode, "tests.fail", "contrib")

    (ran,) = workers.wait(_of(user, "task_ran"))
    assert ran["properties"]["celery_task_id"] == ok_id
    assert ran["properties"]["plan"] == "pro"
    # contrib's CONSUMER span is stamped with the task's context and becomes its event
    (span_event,) = workers.wait(_of(user, "run/tests.fail"))
    assert span_event["properties"]["celery_task_id"] == fail_id
    assert span_event["properties"]["plan"] == "pro"
    # contrib records the exception on the span and our task_failure sees it: one event
    (exc,) = workers.settle(_of(user, "$exception"))
    assert exc["properties"]["celery_task_id"] == fail_id
    assert exc["properties"]["$trace_id"] == span_event["properties"]["$trace_id"]
    assert ran["properties"]["$trace_id"] != exc["properties"]["$trace_id"]


# -- in this process -----------------------------------------------------------------------------


def _snapshotting(seen: list[dict[str, Any]]) -> Callable[..., None]:
    """Record the headers of each message published, as they leave (after every receiver)."""

    def snapshot(headers: Any = None, **_: Any) -> None:
        seen.append(copy.deepcopy(headers))

    signals.before_task_publish.connect(snapshot, weak=False)
    return snapshot


@pytest.mark.parametrize("order", ["contrib_first", "ours_first", "no_contrib"])
@pytest.mark.parametrize("posthog_in_textmap", [True, False])
def test_producer_headers_are_written_once(
    tmp_path: Path, order: str, posthog_in_textmap: bool
) -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    provider = TracerProvider()
    route_to(provider)
    stock: list[Any] = [TraceContextTextMapPropagator(), W3CBaggagePropagator()]
    previous_textmap = propagate.get_global_textmap()
    propagate.set_global_textmap(
        CompositePropagator([*stock, PosthogPropagator()] if posthog_in_textmap else stock)
    )
    contrib, ours = CeleryInstrumentor(), PosthogCeleryInstrumentor()
    first, second = (contrib, ours) if order == "contrib_first" else (ours, contrib)
    seen: list[dict[str, Any]] = []
    snapshot = None
    try:
        if order == "no_contrib":
            ours.instrument()
        else:
            first.instrument()
            second.instrument()
        snapshot = _snapshotting(seen)
        app = make_app(tmp_path)
        token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
        try:
            with posthog.new_context():
                posthog.identify_context("user-h")
                posthog.set_context_session("sess-h")
                posthog.tag("plan", "pro")
                app.send_task("tests.record", args=["x"])
        finally:
            otel_context.detach(token)
    finally:
        if snapshot is not None:
            signals.before_task_publish.disconnect(snapshot)
        ours.uninstrument()
        contrib.uninstrument()
        propagate.set_global_textmap(previous_textmap)
        route_to(None)

    (headers,) = seen
    members = [m.strip() for m in headers["baggage"].split(",")]
    keys = [m.split("=", 1)[0] for m in members]
    assert len(keys) == len(set(keys)), members  # no member twice
    if order != "no_contrib":  # contrib's inject wrote the other members; ours kept them
        assert "tenant=acme" in members
    assert "posthog.distinct_id=user-h" in members
    assert "posthog.session_id=sess-h" in members
    assert "posthog.tag.plan=pro" in members
    for where in (headers, headers["headers"]):
        assert where["X-POSTHOG-DISTINCT-ID"] == "user-h"
        assert where["X-POSTHOG-SESSION-ID"] == "sess-h"
        assert where[CONTEXT_TAGS_HEADER] == '{"plan":"pro"}'
    if order != "no_contrib":
        assert headers["traceparent"].startswith("00-")


@pytest.fixture
def eager() -> Iterator[tuple[Celery, CapturedEvents]]:
    client, events = memory_client()
    app = Celery("eager", broker="memory://")
    app.conf.task_always_eager = True
    instrumentor = PosthogCeleryInstrumentor()
    instrumentor.instrument(client=client, capture_task_events=False)
    try:
        yield app, events
    finally:
        instrumentor.uninstrument()


def test_eager_task_runs_in_a_child_of_the_callers_context(
    eager: tuple[Celery, CapturedEvents],
) -> None:
    app, events = eager
    seen: dict[str, Any] = {}

    @app.task(name="eager.whoami")
    def whoami() -> None:
        seen["distinct_id"] = posthog.get_context_distinct_id()
        seen["tags"] = posthog.get_tags()
        posthog.tag("inside", True)

    @app.task(name="eager.boom")
    def boom() -> None:
        raise RuntimeError("eager boom")

    with posthog.new_context():
        posthog.identify_context("caller")
        posthog.tag("plan", "pro")
        outer = posthog.current_scope()
        result = whoami.delay()
        assert posthog.current_scope() is outer  # restored after the task
        assert "inside" not in posthog.get_tags()  # the task's tags stayed in the task
        failed = boom.apply()
    assert seen["distinct_id"] == "caller"
    assert seen["tags"]["plan"] == "pro"
    assert seen["tags"]["celery_task_id"] == result.id
    assert isinstance(failed.result, RuntimeError)
    (exc,) = events.named("$exception")
    assert exc["distinct_id"] == "caller"
    assert exc["properties"]["celery_task_name"] == "eager.boom"
    assert posthog.current_scope() is None


def test_expected_errors_and_task_filter(eager: tuple[Celery, CapturedEvents]) -> None:
    app, events = eager

    @app.task(name="eager.expected", throws=(KeyError,))
    def expected() -> None:
        raise KeyError("expected")

    expected.apply()
    assert events.named("$exception") == []

    PosthogCeleryInstrumentor().uninstrument()
    PosthogCeleryInstrumentor().instrument(
        client=events.client, task_filter=lambda name, props: name != "eager.skipped"
    )

    @app.task(name="eager.skipped")
    def skipped() -> None:
        raise ValueError("not tracked")

    skipped.apply()
    assert events.named("$exception") == []


def test_uninstrument_disconnects(tmp_path: Path) -> None:
    instrumentor = PosthogCeleryInstrumentor()
    instrumentor.instrument()
    instrumentor.uninstrument()
    seen: list[dict[str, Any]] = []
    snapshot = _snapshotting(seen)
    try:
        with posthog.new_context():
            posthog.identify_context("nobody")
            make_app(tmp_path).send_task("tests.record", args=["x"])
    finally:
        signals.before_task_publish.disconnect(snapshot)
    assert "X-POSTHOG-DISTINCT-ID" not in seen[0]
