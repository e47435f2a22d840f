"""Delivery over real HTTP to a loopback capture server: batching, retries, drops, fork."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

import pytest
import requests
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from posthog_otel import Client
from posthog_otel.delivery.transport import Transport, retry_after_seconds
from posthog_otel.testing.capture_server import CaptureServer, Fault


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Transport, "backoff_base", 0.01)


def _client(server: CaptureServer, **options: Any) -> Client:
    options.setdefault("flush_interval", 0.05)
    return Client("phc_test", host=server.url, **options)


def _uuids(server: CaptureServer) -> list[str]:
    return [e["uuid"] for e in server.events]


def test_batches_close_at_flush_at(capture_server: CaptureServer) -> None:
    client = _client(capture_server, flush_at=10, flush_interval=60)
    for i in range(25):
        client.capture("e", distinct_id=str(i))
    capture_server.wait_for_events(20)
    assert [len(r.body["batch"]) for r in capture_server.accepted] == [10, 10]  # type: ignore[index]
    assert client.flush(5)
    assert len(capture_server.events) == 25
    assert client.stats()["sent"] == 25
    client.shutdown(1)


def test_batches_close_at_flush_interval(capture_server: CaptureServer) -> None:
    client = _client(capture_server, flush_at=100, flush_interval=0.3)
    started = time.monotonic()
    client.capture("lonely", distinct_id="d")
    time.sleep(0.1)
    assert capture_server.events == []  # a partial batch waits for the interval...
    (event,) = capture_server.wait_for_events(1, timeout=5)  # ...then goes without a flush()
    assert time.monotonic() - started >= 0.25
    assert event["event"] == "lonely"
    assert [len(r.body["batch"]) for r in capture_server.accepted] == [1]  # type: ignore[index]
    assert client.flush(5) and client.stats()["sent"] == 1
    client.shutdown(1)


def test_gzip_off_sends_plain_json(capture_server: CaptureServer) -> None:
    client = _client(capture_server, gzip=False)
    client.capture("plain", distinct_id="d")
    assert client.flush(5)
    request = capture_server.accepted[0]
    assert "Content-Encoding" not in request.headers
    client.shutdown(1)


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_retryable_statuses_are_retried_without_duplicates(
    capture_server: CaptureServer, status: int
) -> None:
    capture_server.fail_next(Fault(status=status), Fault(status=status))
    client = _client(capture_server)
    uuids = {client.capture("e", distinct_id=str(i)) for i in range(5)}
    assert client.flush(10)
    assert set(_uuids(capture_server)) == uuids
    assert len(_uuids(capture_server)) == 5
    stats = client.stats()
    assert stats["retries"] == 2 and stats["sent"] == 5 and stats["dropped"] == {}
    client.shutdown(1)


def test_429_honours_retry_after(capture_server: CaptureServer) -> None:
    capture_server.fail_next(Fault(status=429, headers={"Retry-After": "1"}))
    client = _client(capture_server)
    started = time.monotonic()
    client.capture("e", distinct_id="d")
    assert client.flush(10)
    assert time.monotonic() - started >= 0.95
    assert len(capture_server.events) == 1
    client.shutdown(1)


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("-5") == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(
        10.0
    )


def test_connection_reset_and_stall_are_retried(capture_server: CaptureServer) -> None:
    capture_server.fail_next(Fault(reset=True), Fault(stall=1.0))
    client = _client(capture_server, timeout=0.3)
    client.capture("e", distinct_id="d")
    assert client.flush(15)
    # The stalled request may have been stored by the server after the client gave up;
    # PostHog de-duplicates on uuid, and the client counted exactly one delivery.
    assert client.stats()["sent"] == 1
    assert client.stats()["retries"] == 2
    client.shutdown(1)


def test_permanent_4xx_goes_to_on_error_and_is_counted(
    capture_server: CaptureServer, caplog: pytest.LogCaptureFixture
) -> None:
    failures: list[tuple[Exception, list[dict[str, Any]]]] = []
    capture_server.fail_next(Fault(status=400), Fault(status=400))
    client = _client(
        capture_server, flush_at=1, on_error=lambda exc, batch: failures.append((exc, batch))
    )
    client.capture("a", distinct_id="d")
    client.capture("b", distinct_id="d")
    client.capture("c", distinct_id="d")
    assert client.flush(5)
    assert [batch[0]["event"] for _, batch in failures] == ["a", "b"]
    assert client.stats()["dropped"] == {"rejected": 2}
    assert client.stats()["retries"] == 0
    assert [e["event"] for e in capture_server.events] == ["c"]
    assert (
        len(
            [
                r
                for r in caplog.records
                if "HTTP 400" in r.getMessage() and r.levelno == logging.WARNING
            ]
        )
        == 1
    )
    client.shutdown(1)


def test_retries_are_bounded(capture_server: CaptureServer) -> None:
    capture_server.fail_next(*[Fault(status=503) for _ in range(10)])
    client = _client(capture_server, max_retries=2)
    client.capture("e", distinct_id="d")
    assert client.flush(10)
    assert client.stats()["dropped"] == {"failed": 1}
    assert client.stats()["retries"] == 2
    client.shutdown(1)


def test_413_splits_the_batch(capture_server: CaptureServer) -> None:
    capture_server.fail_next(Fault(status=413))
    client = _client(capture_server, flush_at=4, flush_interval=60)
    uuids = {client.capture("e", distinct_id=str(i)) for i in range(4)}
    assert client.flush(5)
    assert set(_uuids(capture_server)) == uuids
    assert [len(r.body["batch"]) for r in capture_server.accepted] == [2, 2]  # type: ignore[index]
    client.shutdown(1)


def test_oversized_event_is_dropped_with_a_warning_naming_it(
    capture_server: CaptureServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client(capture_server)
    client.capture("huge_event", distinct_id="d", properties={"blob": "x" * (1024 * 1024)})
    client.capture("small", distinct_id="d")
    assert client.flush(5)
    assert [e["event"] for e in capture_server.events] == ["small"]
    assert client.stats()["dropped"] == {"too_large": 1}
    assert "huge_event" in caplog.text
    client.shutdown(1)


def test_batches_close_at_five_mebibytes(capture_server: CaptureServer) -> None:
    client = _client(capture_server, flush_at=100, flush_interval=60, gzip=False)
    for i in range(12):
        client.capture("big", distinct_id=str(i), properties={"blob": "y" * (800 * 1024)})
    assert client.flush(10)
    sizes = [r.raw_size for r in capture_server.accepted]
    assert len(capture_server.events) == 12
    assert max(sizes) <= 5 * 1024 * 1024
    assert len(sizes) >= 2
    client.shutdown(1)


def test_full_queue_drops_new_events_counts_them_and_warns_once(
    capture_server: CaptureServer, caplog: pytest.LogCaptureFixture
) -> None:
    capture_server.fail_next(Fault(stall=0.5))
    client = _client(capture_server, max_queue_size=10, flush_at=1)
    for i in range(200):
        client.capture("e", distinct_id=str(i))
    assert client.flush(10)
    stats = client.stats()
    assert stats["captured"] == 200
    assert stats["dropped"]["queue_full"] > 0
    assert stats["sent"] + stats["dropped_total"] == 200
    full_warnings = [r for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(full_warnings) == 1
    client.shutdown(1)


def test_capture_never_waits_for_the_network(capture_server: CaptureServer) -> None:
    capture_server.fail_next(*[Fault(stall=0.5) for _ in range(3)])
    client = _client(capture_server, flush_at=1)
    slowest = 0.0
    for i in range(300):
        started = time.perf_counter()
        client.capture("e", distinct_id=str(i))
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 0.1  # generous: a blocked caller would wait >= 0.5 s
    client.shutdown(0.2)


def test_flush_keeps_its_time_budget(capture_server: CaptureServer) -> None:
    capture_server.fail_next(Fault(stall=2.0))
    client = _client(capture_server, timeout=5)
    client.capture("e", distinct_id="d")
    started = time.monotonic()
    assert client.flush(0.3) is False
    assert time.monotonic() - started < 1.0
    assert client.flush(10)
    client.shutdown(1)


def test_shutdown_with_pending_events_delivers_them(capture_server: CaptureServer) -> None:
    client = _client(capture_server, flush_interval=60, flush_at=100)
    uuids = {client.capture("pending", distinct_id=str(i)) for i in range(50)}
    assert client.shutdown(5)
    assert set(_uuids(capture_server)) == uuids
    assert client.capture("after", distinct_id="d") is None  # dropped: nothing to return
    assert client.stats()["dropped"] == {"shutdown": 1}


def test_shutdown_budget_is_kept_when_the_server_is_down() -> None:
    client = Client("phc_x", host="http://127.0.0.1:9", flush_interval=60)  # nothing listens
    for i in range(5):
        client.capture("e", distinct_id=str(i))
    started = time.monotonic()
    client.shutdown(1.0)
    assert time.monotonic() - started < 2.0
    stats = client.stats()
    assert stats["sent"] == 0
    assert sum(stats["dropped"].values()) == 5
    assert "unacknowledged" not in stats["dropped"]  # never sent: surely not ingested


def test_batch_sent_but_unanswered_at_the_deadline_is_unacknowledged(
    capture_server: CaptureServer,
) -> None:
    capture_server.fail_next(Fault(stall=2.0))
    client = _client(capture_server, flush_interval=60, flush_at=100)
    for i in range(3):
        client.capture("e", distinct_id=str(i))
    assert client.shutdown(0.3) is False
    stats = client.stats()
    assert stats["sent"] == 0
    assert stats["dropped"] == {"unacknowledged": 3}  # PostHog may have stored these


def test_uploads_create_no_spans_and_carry_no_baggage(capture_server: CaptureServer) -> None:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    RequestsInstrumentor().instrument(tracer_provider=provider)
    try:
        client = _client(capture_server, sync_mode=True)
        tracer = provider.get_tracer("test")
        token = otel_context.attach(baggage.set_baggage("posthog.distinct_id", "secret-user"))
        try:
            with tracer.start_as_current_span("app-work"):
                client.capture("e", distinct_id="d")
                requests.get(capture_server.url + "/not-posthog", timeout=5)  # instrumented
        finally:
            otel_context.detach(token)
        (upload,) = [r for r in capture_server.requests if r.path == "/batch/"]
        lowered = {k.lower() for k in upload.headers}
        assert "baggage" not in lowered and "traceparent" not in lowered
        span_names = [s.name for s in exporter.get_finished_spans()]
        assert span_names.count("GET") == 1  # the app's own request only, not the upload
        assert "POST" not in span_names
    finally:
        RequestsInstrumentor().uninstrument()


def test_sync_mode_sends_on_the_callers_thread(capture_server: CaptureServer) -> None:
    client = _client(capture_server, sync_mode=True)
    client.capture("now", distinct_id="d")
    assert [e["event"] for e in capture_server.events] == ["now"]
    assert threading.active_count() >= 1
    client.shutdown(1)


def test_concurrent_capture_loses_nothing(capture_server: CaptureServer) -> None:
    client = _client(capture_server, flush_at=50)
    uuids: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        mine = [client.capture("e", distinct_id=f"{n}-{i}") for i in range(500)]
        with lock:
            uuids.extend(u for u in mine if u)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.flush(20)
    received = _uuids(capture_server)
    assert len(received) == len(set(received)) == 4000
    assert set(received) == set(uuids)
    assert client.stats()["captured"] == 4000
    client.shutdown(1)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_delivers_its_own_events(capture_server: CaptureServer) -> None:
    client = _client(capture_server, flush_interval=60)
    client.capture("before_fork", distinct_id="parent")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            client.capture("in_child", distinct_id="child")
            ok = client.flush(5)
            os.write(write_end, json.dumps({"ok": ok, "stats": client.stats()}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end) as pipe:
        child = json.loads(pipe.read())
    assert child["ok"] is True
    assert child["stats"]["sent"] == 1
    assert client.flush(5)
    names = sorted(e["event"] for e in capture_server.events)
    assert names == ["before_fork", "in_child"]  # nothing sent twice
    client.shutdown(1)


def test_messages_name_the_url_and_what_happens_next(
    capture_server: CaptureServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="posthog_otel")
    capture_server.fail_next(Fault(status=503))
    client = _client(capture_server, flush_at=1, max_retries=0)
    client.capture("a", distinct_id="d")
    assert client.flush(5)
    (line,) = [r.getMessage() for r in caplog.records if "HTTP 503" in r.getMessage()]
    assert "retrying" not in line
    assert "max_retries=0" in line and "dropped" in line
    assert f"{capture_server.url}/batch/" in line
    client.shutdown(1)


def test_a_host_ending_in_batch_is_named_in_the_404_line(
    capture_server: CaptureServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="posthog_otel")
    capture_server.fail_next(Fault(status=404))
    client = Client("phc_k", host=f"{capture_server.url}/batch/", flush_interval=0.01)
    client.capture("a", distinct_id="d")
    assert client.flush(5)
    (line,) = [r.getMessage() for r in caplog.records if "HTTP 404" in r.getMessage()]
    assert f"{capture_server.url}/batch/batch/" in line
    assert "must not end in /batch/" in line
    client.shutdown(1)
