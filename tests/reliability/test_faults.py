"""Delivery under a faulty PostHog: every event is delivered exactly once or dropped and counted.

A loopback :class:`CaptureServer` answers on a schedule with 500, 502, 503, 429 +
``Retry-After``, 413, 400, closes connections mid-request, stalls past the client's timeout
(a stalled request is not stored: the server never processed it, so a uuid seen twice really
is a duplicate sent by retries), and is down for a while (the listener stops and restarts on
the same port). 8 app threads capture 20,000 events meanwhile (100,000 with
``POSTHOG_OTEL_LONG=1``). Afterwards:

- no uuid arrived twice; every uuid that arrived was captured;
- every captured uuid either arrived or was handed to ``on_error`` (exactly one of the two),
  and ``stats()["dropped"]`` has the same counts by reason;
- ``captured == sent + dropped``;
- the callers' ``capture()`` latency: p99 under 20 ms (it is typically tens of microseconds;
  the bound is loose because a 2-core CI box shares the GIL with the in-process server).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from posthog_otel import Client
from posthog_otel.delivery.transport import Transport
from posthog_otel.testing.capture_server import CaptureServer, Fault
from tests.support.waiting import wait_until

from ._report import LONG, latency_ms, write_artifact

THREADS = 8
EVENTS = 100_000 if LONG else 20_000
ROUNDS = 8 if LONG else 2  # times the fault block is played
P99_BOUND_MS = 20.0

OK = Fault()


def _fault_block() -> list[Fault]:
    """One round of scripted answers, consumed one per POST in order (retries included)."""
    return [
        OK,
        Fault(status=500),
        OK,
        Fault(status=502),
        OK,
        Fault(status=503),
        Fault(status=503),
        OK,
        Fault(status=429, headers={"Retry-After": "1"}),
        OK,
        Fault(status=413),  # the batch is split in halves, each retried
        OK,
        OK,
        Fault(status=400),  # permanent: the batch is rejected
        OK,
        Fault(reset=True),  # connection closed mid-request
        OK,
        Fault(stall=1.5),  # past the client's 1 s timeout: abandoned, never stored
        OK,
        *[Fault(status=500)] * 5,  # one more than max_retries: the batch fails
        OK,
        Fault(reset=True),
        Fault(stall=1.5),
        Fault(status=502),
        OK,
        *[Fault(status=413)] * 9,  # split down to single events; the last one is too large
        *[OK] * 10,
    ]


def _reason_of(error: Exception) -> str:
    """The drop counter an ``on_error`` exception belongs to."""
    if isinstance(error, requests.HTTPError) and error.response is not None:
        status = error.response.status_code
        if status == 413:
            return "too_large"
        if status < 500 and status not in (408, 429):
            return "rejected"
    return "failed"


@pytest.fixture
def faulty_server() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


def test_capture_server_does_not_store_a_request_its_client_abandoned(
    faulty_server: CaptureServer,
) -> None:
    faulty_server.fail_next(Fault(stall=1.0))
    body = {"api_key": "phc_k", "batch": [{"event": "e", "distinct_id": "d", "uuid": "u1"}]}
    with pytest.raises(requests.Timeout):
        requests.post(faulty_server.url + "/batch/", json=body, timeout=0.2)
    wait_until(lambda: faulty_server.abandoned >= 1, timeout=5, what="the abandoned request")
    assert faulty_server.abandoned == 1
    assert faulty_server.uuids == set() and faulty_server.requests == []
    # A stall shorter than the client's patience is a slow but successful request.
    faulty_server.fail_next(Fault(stall=0.2))
    assert requests.post(faulty_server.url + "/batch/", json=body, timeout=5).status_code == 200
    assert faulty_server.uuids == {"u1"}


def test_capture_server_down_and_up_on_the_same_port(faulty_server: CaptureServer) -> None:
    body = {"api_key": "phc_k", "batch": [{"event": "e", "distinct_id": "d", "uuid": "u1"}]}
    session = requests.Session()  # a pooled keep-alive connection, cut by down()
    assert session.post(faulty_server.url + "/batch/", json=body, timeout=5).status_code == 200
    faulty_server.down()
    with pytest.raises(requests.ConnectionError):
        session.post(faulty_server.url + "/batch/", json=body, timeout=5)
    faulty_server.up()
    body["batch"][0]["uuid"] = "u2"
    assert session.post(faulty_server.url + "/batch/", json=body, timeout=5).status_code == 200
    assert faulty_server.uuids == {"u1", "u2"} and faulty_server.event_count == 2


def test_every_event_is_delivered_once_or_dropped_with_its_reason(
    faulty_server: CaptureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Transport, "backoff_base", 0.05)  # 4 retries span ~0.4-0.75 s
    schedule: list[Fault] = []
    for round_ in range(ROUNDS):
        schedule += _fault_block()
        schedule += [OK] * (20 if round_ < ROUNDS - 1 else 0)
    faulty_server.fail_next(*schedule)

    dropped_batches: list[tuple[str, list[str]]] = []

    def on_error(error: Exception, batch: list[dict[str, Any]]) -> None:
        dropped_batches.append((_reason_of(error), [event["uuid"] for event in batch]))

    client = Client(
        "phc_faults",
        host=faulty_server.url,
        flush_at=100,
        flush_interval=0.05,
        max_queue_size=EVENTS + 1000,  # this suite is about faults; overload is its own suite
        max_retries=4,
        timeout=1.0,  # the whole post; a loaded machine may take 0.4 s to answer a plain 200
        on_error=on_error,
    )

    # PostHog goes down for a while, twice, while the app keeps capturing.
    stop_outages = threading.Event()

    def outages() -> None:
        for start_after in (0.8, 1.5):
            if stop_outages.wait(start_after):
                return
            faulty_server.down()
            stop_outages.wait(1.0)
            faulty_server.up()

    captured: list[list[str | None]] = [[] for _ in range(THREADS)]
    latencies: list[list[int]] = [[] for _ in range(THREADS)]
    per_thread = EVENTS // THREADS
    start = threading.Barrier(THREADS + 1)

    def app_thread(n: int) -> None:
        mine, timings = captured[n], latencies[n]
        clock = time.perf_counter_ns
        start.wait()
        for i in range(per_thread):
            began = clock()
            uuid = client.capture(
                "order_paid", distinct_id=f"user-{n}-{i % 50}", properties={"n": n, "i": i}
            )
            timings.append(clock() - began)
            mine.append(uuid)
            time.sleep(0.0005)  # the app does other work between captures

    controller = threading.Thread(target=outages, daemon=True)
    workers = [threading.Thread(target=app_thread, args=(n,), daemon=True) for n in range(THREADS)]
    for worker in workers:
        worker.start()
    started = time.monotonic()
    controller.start()
    start.wait()
    for worker in workers:
        worker.join(120)
        assert not worker.is_alive(), "an app thread hung in capture()"
    capture_seconds = time.monotonic() - started
    controller.join(30)
    stop_outages.set()
    assert client.flush(120), f"not drained: {client.stats()}"
    drain_seconds = time.monotonic() - started
    stats = client.stats()
    assert client.shutdown(5)

    # -- nothing vanished, nothing twice ---------------------------------------------------
    uuids = [u for thread in captured for u in thread]
    assert None not in uuids
    all_captured = set(uuids)
    assert len(all_captured) == len(uuids) == EVENTS == stats["captured"]

    arrived = faulty_server.uuids
    duplicates = faulty_server.event_count - len(arrived)
    assert duplicates == 0, f"{duplicates} events were stored twice"
    assert arrived <= all_captured

    dropped_uuids = [u for _, batch in dropped_batches for u in batch]
    assert len(dropped_uuids) == len(set(dropped_uuids)), "an event was reported dropped twice"
    assert not (set(dropped_uuids) & arrived), "an event was both delivered and reported dropped"
    assert arrived | set(dropped_uuids) == all_captured, "events vanished"

    by_reason = collections.Counter[str]()
    for reason, batch in dropped_batches:
        by_reason[reason] += len(batch)
    assert stats["dropped"] == dict(by_reason)
    assert stats["sent"] == len(arrived)
    assert stats["captured"] == stats["sent"] + stats["dropped_total"]
    assert stats["queued"] == 0

    # -- the schedule really happened -----------------------------------------------------
    statuses = collections.Counter(r.status for r in faulty_server.requests)
    for status in (500, 502, 503, 429, 413, 400):
        assert statuses[status] >= ROUNDS, statuses
    assert faulty_server.resets >= 2 * ROUNDS
    assert faulty_server.abandoned >= 1  # at least one stall outlived the client's timeout
    assert stats["retries"] > 0
    assert {"rejected", "failed"} <= set(stats["dropped"])

    # -- the app never waited ---------------------------------------------------------------
    figures = latency_ms([t for thread in latencies for t in thread])
    write_artifact(
        "faults",
        {
            "events": EVENTS,
            "threads": THREADS,
            "capture_latency": figures,
            "delivered": len(arrived),
            "dropped": stats["dropped"],
            "retries": stats["retries"],
            "batches": stats["batches"],
            "server_statuses": {str(k): v for k, v in sorted(statuses.items())},
            "connections_reset": faulty_server.resets,
            "stalls_abandoned": faulty_server.abandoned,
            "capture_seconds": round(capture_seconds, 2),
            "drain_seconds": round(drain_seconds, 2),
        },
    )
    assert figures["p99_ms"] < P99_BOUND_MS, figures


def test_shutdown_in_the_middle_of_a_slow_batch_counts_each_event_once(
    faulty_server: CaptureServer,
) -> None:
    """Regression: a batch in flight when shutdown's budget ran out was counted twice (as a
    shutdown leftover and again by the sender), and the sender started new batches after the
    deadline."""
    faulty_server.fail_next(*[Fault(stall=0.3)] * 20)
    client = Client("phc_k", host=faulty_server.url, flush_at=10, flush_interval=0.01, timeout=5)
    for i in range(100):
        client.capture("e", distinct_id=str(i))
    time.sleep(0.05)
    assert client.shutdown(0.45) is False
    wait_until(
        lambda: not client.stats()["queued"],
        timeout=5,
        interval=0.01,
        what=lambda: f"the queue to settle: {client.stats()}",
    )
    time.sleep(0.5)  # long enough for a batch started after the deadline to show up
    stats = client.stats()
    assert stats["captured"] == 100 == stats["sent"] + stats["dropped_total"], stats
    assert stats["queued"] == 0
    assert faulty_server.event_count == len(faulty_server.uuids)
    assert set(stats["dropped"]) <= {"shutdown", "unacknowledged"}
    assert stats["dropped_total"] == 100 - stats["sent"]
    # the batch in flight at the deadline (at most 10 events) was sent but not answered:
    # counted as unacknowledged; here the server abandoned it, elsewhere it may be stored
    unacknowledged = stats["dropped"].get("unacknowledged", 0)
    assert unacknowledged <= 10
    assert stats["sent"] <= faulty_server.event_count <= stats["sent"] + unacknowledged
    assert faulty_server.abandoned <= 1  # only the batch in flight at the deadline
