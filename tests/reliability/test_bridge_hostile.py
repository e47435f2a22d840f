"""The bridge against hostile clients: stalled uploads, slow headers, floods of bytes, odd
numbers. A real ``posthog-otel bridge`` subprocess on 127.0.0.1; other "clients" connect from
127.0.0.2 (still loopback) where a test needs a second client address.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from posthog_otel.bridge.pipeline import Pipeline
from posthog_otel.bridge.settings import BridgeSettings
from posthog_otel.client import Client
from posthog_otel.otlp.decode import OVER_TIME, decode_traces
from posthog_otel.otlp.responses import JSON, PROTOBUF
from tests.support.procs import free_port, start, stop, wait_until_up

MIB = 1024 * 1024


@contextmanager
def bridge(*args: str, posthog: str | None = None) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = free_port()
    env = {
        "POSTHOG_API_KEY": "phc_hostile",
        "POSTHOG_HOST": posthog or f"http://127.0.0.1:{free_port()}",  # nobody listens
    }
    proc = start([sys.executable, "-m", "posthog_otel", "bridge", "--port", str(port), *args], env)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", proc)
        yield port, proc
    finally:
        if proc.poll() is None:
            stop(proc)


def _roots(count: int, attribute_bytes: int = 0) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for index in range(count):
        span = scope.spans.add(
            trace_id=os.urandom(16), span_id=(index + 1).to_bytes(8, "big"), name="GET /", kind=2
        )
        span.attributes.add(key="user.id").value.string_value = "hostile-user"
        if attribute_bytes:
            span.attributes.add(key="blob").value.string_value = "x" * attribute_bytes
    return request.SerializeToString()


def _post(
    port: int, body: bytes, source: str = "127.0.0.1", headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(source, 0)
    )
    connection.request(
        "POST", "/v1/traces", body=body, headers={"Content-Type": PROTOBUF, **(headers or {})}
    )
    return connection.getresponse()


def _stalled_upload(port: int, inflated: int) -> socket.socket:
    """A gzip upload that inflates to ``inflated`` bytes, then stops before its end."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    data = compressor.compress(bytes(inflated)) + compressor.flush(zlib.Z_FULL_FLUSH)
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {PROTOBUF}\r\n"
        f"Content-Encoding: gzip\r\nContent-Length: {len(data) + 1000}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(head + data)
    return sock


def _status_line(sock: socket.socket, timeout: float) -> str:
    sock.settimeout(timeout)
    received = b""
    try:
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    except TimeoutError:
        return "timeout"
    return received.split(b"\r\n", 1)[0].decode() or "closed"


def test_stalled_uploads_are_cut_off_and_cannot_take_the_whole_memory_budget() -> None:
    with bridge("--body-timeout", "3", "--max-queue-size", "1000") as (port, _):
        first = _stalled_upload(port, 60 * MIB)
        time.sleep(0.5)  # its 60 MiB are held now
        second = _stalled_upload(port, 60 * MIB)  # same client: over its half of the budget
        assert _status_line(second, 10).startswith("HTTP/1.1 503")
        started = time.monotonic()
        other = _post(port, _roots(2), source="127.0.0.2")  # another client is served at once
        assert other.status == 200 and time.monotonic() - started < 2
        assert _status_line(first, 10).startswith("HTTP/1.1 408")  # cut at the body deadline
        assert time.monotonic() - started < 6
        assert _post(port, _roots(1)).status == 200  # the same client again, once freed
        first.close()
        second.close()


def test_a_connection_that_sends_its_headers_slowly_is_closed() -> None:
    with bridge("--header-timeout", "2") as (port, _):
        slow = socket.create_connection(("127.0.0.1", port), timeout=30)
        slow.sendall(b"POST /v1/traces HTTP/1.1\r\n")
        started = time.monotonic()
        closed_after = None
        for _ in range(20):  # a header byte every 0.5 s, for up to 10 s
            try:
                slow.sendall(b"X")
                slow.settimeout(0.5)
                if slow.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
        assert closed_after is not None and closed_after < 5, closed_after
        idle = socket.create_connection(("127.0.0.1", port), timeout=30)  # sends nothing
        assert _status_line(idle, 6) == "closed"
        assert _post(port, _roots(1)).status == 200  # and the bridge still serves


def test_the_outgoing_queue_is_bounded_by_bytes_with_429_and_retry_after() -> None:
    with bridge("--max-queue-mib", "1", "--retry-after", "5") as (port, _):
        statuses = []
        for _ in range(40):  # 40 x 100 spans x 2 KiB: ~8 MiB of events, PostHog never answers
            answer = _post(port, _roots(100, attribute_bytes=2048))
            answer.read()
            statuses.append(answer.status)
            if answer.status == 429:
                assert answer.headers["Retry-After"] == "5"
        assert 200 in statuses and 429 in statuses, statuses
        stats = _get_json(port, "/stats")
        assert stats["queued_bytes"] <= 1 * MIB + 300 * 1024, stats  # the bound + one request
        assert stats["throttled_requests"] == statuses.count(429)


def _get_json(port: int, path: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path, headers=headers or {})
    answer = connection.getresponse()
    body = answer.read()
    result: dict[str, object] = {"_status": answer.status, **(json.loads(body) if body else {})}
    return result


def test_healthz_is_liveness_only_when_a_header_is_required() -> None:
    with bridge("--require-header", "Authorization=Bearer s3cret") as (port, _):
        health = _get_json(port, "/healthz")
        assert health == {"_status": 200, "status": "ok"}  # no PID, no counters
        assert _get_json(port, "/stats")["_status"] == 401
        stats = _get_json(port, "/stats", {"Authorization": "Bearer s3cret"})
        assert stats["_status"] == 200 and isinstance(stats["pid"], int)
    with bridge() as (port, _):  # nothing required: /healthz shows the counters as before
        assert "pid" in _get_json(port, "/healthz")


BIG = "9" * 4000


@pytest.mark.parametrize(
    "field",
    ["kind", "flags", "status", "event_time", "int_value", "double_value", "start_time"],
)
def test_huge_json_numbers_cost_at_most_one_log_line_per_request(
    field: str, caplog: pytest.LogCaptureFixture
) -> None:
    spans = []
    for index in range(50):
        span: dict[str, object] = {
            "traceId": "01" * 16,
            "spanId": f"{index + 1:016x}",
            "name": "GET /",
            "kind": 2,
            "attributes": [{"key": "user.id", "value": {"stringValue": "u"}}],
        }
        if field == "kind":
            span["kind"] = "BIG"
        elif field == "flags":
            span["flags"] = "BIG"
        elif field == "status":
            span["status"] = {"code": "BIG"}
        elif field == "event_time":
            span["events"] = [{"name": "exception", "timeUnixNano": "BIG"}]
        elif field == "start_time":
            span["startTimeUnixNano"] = "BIG"
        else:
            key = "intValue" if field == "int_value" else "doubleValue"
            span["attributes"].append({"key": "n", "value": {key: "BIG"}})  # type: ignore[attr-defined]
        spans.append(span)
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})
    body = body.replace('"BIG"', BIG)
    pipeline = Pipeline(BridgeSettings.build(api_key="phc_x", capture_spans="all"))
    client = Client("phc_x", f"http://127.0.0.1:{free_port()}", sync_mode=False)
    try:
        with caplog.at_level(logging.INFO, logger="posthog_otel.bridge"):
            outcome = pipeline.process("traces", body.encode(), JSON, client)
    finally:
        client.shutdown(0.1)
    assert outcome.status in (200, 400), outcome
    bridge_records = [r for r in caplog.records if r.name == "posthog_otel.bridge"]
    assert len(bridge_records) <= 1, [r.getMessage() for r in bridge_records]
    assert not any(r.exc_info for r in bridge_records)


def test_decoding_stops_at_its_deadline_and_counts_the_rest() -> None:
    request = ExportTraceServiceRequest.FromString(_roots(5000))
    body = request.SerializeToString()
    batch = decode_traces(body, PROTOBUF, lambda *_: True, deadline=time.monotonic() - 1)
    assert batch.total == 5000
    assert batch.rejected + len(batch.items) == 5000
    assert batch.rejected >= 5000 - 1024 and batch.first_error == OVER_TIME
    full = decode_traces(body, PROTOBUF, lambda *_: True, deadline=time.monotonic() + 60)
    assert (full.total, full.rejected, len(full.items)) == (5000, 0, 5000)


def test_empty_spans_are_rejected_without_being_read() -> None:
    spans = b"\x12\x00" * 100_000  # ScopeSpans.spans, each empty

    def wrap(tag: int, payload: bytes) -> bytes:
        size, out = len(payload), bytearray([tag])
        while size > 0x7F:
            out.append(size & 0x7F | 0x80)
            size >>= 7
        return bytes(out) + bytes([size]) + payload

    body = wrap(0x0A, wrap(0x12, spans))
    batch = decode_traces(body, PROTOBUF, lambda *_: True)
    assert (batch.total, batch.rejected, len(batch.items)) == (100_000, 100_000, 0)
    assert batch.first_error and "trace" in batch.first_error
