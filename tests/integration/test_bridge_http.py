"""``posthog-otel bridge`` as a real subprocess on 127.0.0.1, fed by the real OTLP/HTTP
exporters and by hand, delivering to a loopback capture server."""

from __future__ import annotations

import gzip
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from posthog_otel.testing.capture_server import CaptureServer, Fault
from tests.support.bridge_proc import bridge_process
from tests.support.procs import free_port
from tests.support.waiting import wait_for_events

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


@contextmanager
def running_bridge(
    *args: str, posthog: str | None, key: str | None = "phc_bridge"
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    env = {"POSTHOG_HOST": posthog or f"http://127.0.0.1:{free_port()}"}
    if key:
        env["POSTHOG_API_KEY"] = key
    with bridge_process(*args, env=env, stop_timeout=20) as running:
        yield running


@pytest.fixture(scope="module")
def posthog() -> Iterator[CaptureServer]:
    with CaptureServer() as server:
        yield server


@pytest.fixture(scope="module")
def bridge(posthog: CaptureServer) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with running_bridge("--max-body-mib", "4", posthog=posthog.url) as running:
        yield running


def _events_for(server: CaptureServer, distinct_id: str, count: int) -> list[dict[str, Any]]:
    """Exactly ``count`` events of ``distinct_id`` (waiting for them, then none more)."""
    found = wait_for_events(server, lambda e: e["distinct_id"] == distinct_id, count)
    assert len(found) == count, found
    return found


def _tracer(url: str, compression: Compression, headers: dict[str, str] | None = None) -> Any:
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    exporter = OTLPSpanExporter(
        endpoint=f"{url}/v1/traces", compression=compression, headers=headers, timeout=5
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


# --------------------------------------------------------------------------- real exporters


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_spans_from_the_otlp_exporter_become_events(
    bridge: tuple[str, Any], posthog: CaptureServer, compression: Compression
) -> None:
    url, _ = bridge
    user = f"user-{uuid.uuid4()}"
    provider = _tracer(url, compression)
    tracer = provider.get_tracer("shop")
    identity = {
        "posthog.distinct_id": user,
        "posthog.session_id": "session-42",
        "posthog.tag.plan": "pro",
        "posthog.tag.cart": '{"items":3}',
    }
    with tracer.start_as_current_span(
        "POST /checkout",
        kind=SpanKind.SERVER,
        attributes={**identity, "http.request.method": "POST", "url.path": "/checkout"},
    ) as root:
        with tracer.start_as_current_span("charge card", attributes=identity) as child:
            try:
                raise RuntimeError("card declined")
            except RuntimeError as exc:
                child.record_exception(exc, attributes={"exception.escaped": "true"})
                child.set_status(Status(StatusCode.ERROR, "declined"))
        root.set_attribute("http.response.status_code", 502)
    provider.shutdown()

    exception, request = sorted(_events_for(posthog, user, 2), key=lambda e: e["event"])
    assert request["event"] == "POST /checkout"
    props = request["properties"]
    assert props["$session_id"] == "session-42"
    assert props["plan"] == "pro" and props["cart"] == {"items": 3}
    assert props["$request_method"] == "POST" and props["http_status_code"] == 502
    assert props["service.name"] == "checkout" and props["$lib"] == "posthog-otel"
    assert exception["event"] == "$exception"
    assert exception["properties"]["$session_id"] == "session-42"
    assert exception["properties"]["plan"] == "pro"
    assert exception["properties"]["$trace_id"] == props["$trace_id"]
    (entry,) = exception["properties"]["$exception_list"]
    assert (entry["type"], entry["value"]) == ("RuntimeError", "card declined")
    assert entry["mechanism"]["handled"] is False
    frame = entry["stacktrace"]["frames"][-1]
    assert frame["function"].endswith("test_spans_from_the_otlp_exporter_become_events")
    assert frame["context_line"] == 'raise RuntimeError("card declined")'


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_logs_from_the_otlp_exporter_become_events(
    bridge: tuple[str, Any], posthog: CaptureServer, compression: Compression
) -> None:
    url, _ = bridge
    user = f"user-{uuid.uuid4()}"
    provider = LoggerProvider(resource=Resource.create({"service.name": "worker"}))
    exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs", compression=compression, timeout=5)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger(f"bridge-test-{user}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK's handler still works
        logger.addHandler(LoggingHandler(logger_provider=provider))
    identity = {"posthog.distinct_id": user, "posthog.session_id": "session-7"}
    try:
        {}["missing"]
    except KeyError:
        logger.exception("lookup failed", extra=identity)
    logger.info("signed up", extra={**identity, "posthog.event": "user signed up", "plan": "pro"})
    logger.warning("slow", extra=identity)  # below ERROR, not marked: no event
    provider.shutdown()

    events = sorted(_events_for(posthog, user, 2), key=lambda e: e["event"])
    exception, marked = events
    assert exception["event"] == "$exception"
    assert exception["properties"]["$session_id"] == "session-7"
    assert exception["properties"]["message"] == "lookup failed"
    (entry,) = exception["properties"]["$exception_list"]
    assert (entry["type"], entry["value"]) == ("KeyError", "missing")  # the handler's args[0]
    assert entry["stacktrace"]["frames"][-1]["context_line"] == '{}["missing"]'
    assert marked["event"] == "user signed up"
    assert marked["properties"]["plan"] == "pro"
    assert marked["properties"]["severity_text"] == "INFO"


def test_hand_written_otlp_json_with_hex_ids(
    bridge: tuple[str, Any], posthog: CaptureServer
) -> None:
    url, _ = bridge
    user = f"user-{uuid.uuid4()}"
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "go-api"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "parentSpanId": "EEE19B7EC3C1B173",
                                "flags": 768,
                                "name": "GET /orders",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000500000000",
                                "attributes": [
                                    {"key": "enduser.id", "value": {"stringValue": user}},
                                    {"key": "session.id", "value": {"stringValue": "s-1"}},
                                ],
                                "events": [
                                    {
                                        "name": "exception",
                                        "timeUnixNano": "1700000000400000000",
                                        "attributes": [
                                            {
                                                "key": "exception.type",
                                                "value": {"stringValue": "*errors.errorString"},
                                            },
                                            {
                                                "key": "exception.message",
                                                "value": {"stringValue": "db down"},
                                            },
                                            {
                                                "key": "exception.stacktrace",
                                                "value": {
                                                    "stringValue": "goroutine 1 [running]:\nmain.handler(0x1)\n"
                                                    "\t/src/api/main.go:42 +0x1d\n"
                                                },
                                            },
                                        ],
                                    }
                                ],
                                "status": {"code": 2},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    response = requests.post(
        f"{url}/v1/traces",
        data=gzip.compress(json.dumps(body).encode()),
        headers={**JSON, "Content-Encoding": "gzip"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {}
    exception, request = sorted(_events_for(posthog, user, 2), key=lambda e: e["event"])
    assert request["properties"]["$trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert request["properties"]["$span_id"] == "eee19b7ec3c1b174"
    assert request["properties"]["$parent_span_id"] == "eee19b7ec3c1b173"
    assert request["properties"]["$session_id"] == "s-1"
    assert request["timestamp"].startswith("2023-11-14T22:13:20")
    (entry,) = exception["properties"]["$exception_list"]
    assert entry["value"] == "db down"
    assert entry["stacktrace"]["frames"][0]["filename"] == "/src/api/main.go"


# --------------------------------------------------------------------------- hostile input


def _status(response: requests.Response) -> status_pb2.Status:
    assert response.headers["Content-Type"] == "application/x-protobuf"
    return status_pb2.Status.FromString(response.content)


def _valid_request(spans: int = 1) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for index in range(spans):
        scope.spans.add(
            trace_id=os.urandom(16), span_id=(index + 1).to_bytes(8, "big"), name="s", kind=1
        )
    return request


def test_truncated_protobuf_is_a_400_with_a_status(bridge: tuple[str, Any]) -> None:
    url, proc = bridge
    body = _valid_request(3).SerializeToString()
    response = requests.post(f"{url}/v1/traces", data=body[:-5], headers=PROTOBUF, timeout=5)
    assert response.status_code == 400
    status = _status(response)
    assert status.code == 3 and "not a valid OTLP" in status.message
    response = requests.post(
        f"{url}/v1/logs", data=b"{nope", headers={**JSON, "Content-Encoding": "gzip"}, timeout=5
    )
    assert response.status_code == 400 and response.json()["code"] == 3
    assert proc.poll() is None


def test_partial_success_names_the_rejected_spans(bridge: tuple[str, Any]) -> None:
    url, _ = bridge
    request = _valid_request(2)
    request.resource_spans[0].scope_spans[0].spans[1].trace_id = b"short"
    response = requests.post(
        f"{url}/v1/traces", data=request.SerializeToString(), headers=PROTOBUF, timeout=5
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "traceId" in answer.partial_success.error_message


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "text/plain"}, 415),
        ({"Content-Type": "application/grpc"}, 415),
        ({}, 415),
        ({**PROTOBUF, "Content-Encoding": "br"}, 415),
    ],
)
def test_wrong_content_types_are_415(
    bridge: tuple[str, Any], headers: dict[str, str], status: int
) -> None:
    url, _ = bridge
    response = requests.post(f"{url}/v1/traces", data=b"x", headers=headers, timeout=5)
    assert response.status_code == status
    assert response.headers["Content-Type"] in ("application/json", "application/x-protobuf")


def test_routes(bridge: tuple[str, Any]) -> None:
    url, _ = bridge
    assert requests.get(f"{url}/v1/traces", timeout=5).status_code == 405
    assert (
        requests.post(f"{url}/v1/metrics", data=b"", headers=PROTOBUF, timeout=5).status_code == 404
    )
    empty = requests.post(f"{url}/v1/traces", data=b"", headers=PROTOBUF, timeout=5)
    assert (empty.status_code, empty.content) == (200, b"")
    health = requests.get(f"{url}/healthz", timeout=5).json()
    assert health["status"] == "ok" and health["spans"] >= 0


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_gzip_bombs_and_oversized_bodies_are_413_with_bounded_memory(
    bridge: tuple[str, Any],
) -> None:
    url, proc = bridge  # started with --max-body-mib 4
    bomb = gzip.compress(bytes(200 * 1024 * 1024), compresslevel=9)  # 200 MiB in ~200 KiB
    for path in ("/v1/traces", "/v1/logs"):
        response = requests.post(
            f"{url}{path}", data=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=10
        )
        assert response.status_code == 413
        assert _status(response).code == 8
    plain = requests.post(
        f"{url}/v1/traces", data=bytes(5 * 1024 * 1024), headers=PROTOBUF, timeout=10
    )
    assert plain.status_code == 413
    assert proc.poll() is None
    assert _peak_rss_mib(proc.pid) < 150  # never near the 200 MiB the bomb expands to


def test_huge_attribute_counts(bridge: tuple[str, Any], posthog: CaptureServer) -> None:
    url, proc = bridge
    user = f"user-{uuid.uuid4()}"
    request = ExportTraceServiceRequest()
    span = (
        request.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name="wide", kind=2)
    )
    for i in range(150_000):
        span.attributes.add(key=f"k{i}").value.int_value = i
    span.attributes.add(key="posthog.distinct_id").value.string_value = user  # last of all
    body = request.SerializeToString()
    assert 2 * 1024 * 1024 < len(body) < 4 * 1024 * 1024
    response = requests.post(f"{url}/v1/traces", data=body, headers=PROTOBUF, timeout=30)
    assert response.status_code == 200
    (event,) = _events_for(posthog, user, 1)
    assert "k127" in event["properties"] and "k128" not in event["properties"]
    assert proc.poll() is None
    assert _peak_rss_mib(proc.pid) < 150


# --------------------------------------------------------------------------- configuration


def test_required_header(posthog: CaptureServer) -> None:
    with running_bridge("--require-header", "Authorization=Bearer s3cret", posthog=posthog.url) as (
        url,
        _,
    ):
        user = f"user-{uuid.uuid4()}"
        refused = requests.post(f"{url}/v1/traces", data=b"", headers=PROTOBUF, timeout=5)
        assert refused.status_code == 401 and _status(refused).code == 16
        wrong = requests.post(
            f"{url}/v1/traces",
            data=b"",
            headers={**PROTOBUF, "Authorization": "Bearer nope"},
            timeout=5,
        )
        assert wrong.status_code == 401
        provider = _tracer(url, Compression.Gzip, headers={"Authorization": "Bearer s3cret"})
        with provider.get_tracer("t").start_as_current_span(
            "GET /", kind=SpanKind.SERVER, attributes={"user.id": user}
        ):
            pass
        provider.shutdown()
        (event,) = _events_for(posthog, user, 1)
        assert event["event"] == "GET /"
        assert posthog.accepted[-1].body["api_key"] == "phc_bridge"  # type: ignore[index]


def test_key_comes_from_the_request_only_when_allowed(posthog: CaptureServer) -> None:
    with running_bridge("--key-from-request", posthog=posthog.url, key=None) as (url, _):
        user = f"user-{uuid.uuid4()}"
        request = _valid_request()
        span = request.resource_spans[0].scope_spans[0].spans[0]
        span.kind = 2  # type: ignore[assignment]
        span.attributes.add(key="user.id").value.string_value = user
        body = request.SerializeToString()
        missing = requests.post(f"{url}/v1/traces", data=body, headers=PROTOBUF, timeout=5)
        assert missing.status_code == 401
        response = requests.post(
            f"{url}/v1/traces",
            data=body,
            headers={**PROTOBUF, "Authorization": "Bearer phc_from_request"},
            timeout=5,
        )
        assert response.status_code == 200
        _events_for(posthog, user, 1)
        keys = {r.body["api_key"] for r in posthog.accepted if r.body}
        assert "phc_from_request" in keys
    # without the flag the request's bearer token is never used as the project key
    result = subprocess.run(
        [sys.executable, "-m", "posthog_otel", "bridge", "--port", "0"],
        env={k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "POSTHOG_API_KEY" in result.stderr


def test_back_pressure_answers_429_with_retry_after() -> None:
    # PostHog unreachable: the first request's events stay queued (the sender retries).
    with running_bridge(
        "--max-queue-size", "3", "--retry-after", "7", "--shutdown-timeout", "1", posthog=None
    ) as (url, proc):

        def roots(count: int) -> bytes:
            request = _valid_request(count)
            for span in request.resource_spans[0].scope_spans[0].spans:
                span.kind = 2  # type: ignore[assignment]
                span.attributes.add(key="user.id").value.string_value = "u"
            return request.SerializeToString()

        first = requests.post(f"{url}/v1/traces", data=roots(3), headers=PROTOBUF, timeout=5)
        assert first.status_code == 200
        for body in (roots(1), b""):
            throttled = requests.post(f"{url}/v1/traces", data=body, headers=PROTOBUF, timeout=5)
            assert throttled.status_code == 429
            assert throttled.headers["Retry-After"] == "7"
            assert _status(throttled).code == 8
        json_throttled = requests.post(f"{url}/v1/logs", data=b"{}", headers=JSON, timeout=5)
        assert json_throttled.status_code == 429 and json_throttled.json()["code"] == 8
        assert requests.get(f"{url}/healthz", timeout=5).json()["throttled_requests"] == 3
        assert proc.poll() is None


def test_sigterm_flushes_queued_events(posthog: CaptureServer) -> None:
    with running_bridge("--shutdown-timeout", "5", posthog=posthog.url) as (url, proc):
        user = f"user-{uuid.uuid4()}"
        request = _valid_request(20)
        for span in request.resource_spans[0].scope_spans[0].spans:
            span.kind = 2  # type: ignore[assignment]
            span.attributes.add(key="posthog.distinct_id").value.string_value = user
        response = requests.post(
            f"{url}/v1/traces", data=request.SerializeToString(), headers=PROTOBUF, timeout=5
        )
        assert response.status_code == 200
        proc.send_signal(signal.SIGTERM)  # before the 0.5 s flush interval is up
        _, err = proc.communicate(timeout=15)
        assert proc.returncode in (0, -signal.SIGTERM), err
        assert "all delivered" in err
    assert len([e for e in posthog.events if e["distinct_id"] == user]) == 20


def test_sigterm_gives_up_after_the_deadline_when_posthog_hangs() -> None:
    with CaptureServer() as stalled:
        stalled.fail_next(*[Fault(stall=30)] * 3)
        with running_bridge("--shutdown-timeout", "1", posthog=stalled.url) as (url, proc):
            request = _valid_request(2)
            for span in request.resource_spans[0].scope_spans[0].spans:
                span.kind = 2  # type: ignore[assignment]
                span.attributes.add(key="user.id").value.string_value = "u"
            requests.post(
                f"{url}/v1/traces", data=request.SerializeToString(), headers=PROTOBUF, timeout=5
            )
            time.sleep(0.8)  # the sender is now stuck on the stalled upload
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
            assert time.monotonic() - started < 6
            assert "NOT all delivered" in err


def test_two_workers(posthog: CaptureServer) -> None:
    with running_bridge("--workers", "2", posthog=posthog.url) as (url, proc):
        users = [f"user-{uuid.uuid4()}" for _ in range(6)]
        pids = set()
        for user in users:
            request = _valid_request()
            span = request.resource_spans[0].scope_spans[0].spans[0]
            span.kind = 2  # type: ignore[assignment]
            span.attributes.add(key="user.id").value.string_value = user
            with requests.Session() as session:  # a new connection each time
                response = session.post(
                    f"{url}/v1/traces",
                    data=request.SerializeToString(),
                    headers=PROTOBUF,
                    timeout=5,
                )
                assert response.status_code == 200
                pids.add(session.get(f"{url}/healthz", timeout=5).json()["pid"])
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
        for user in users:
            _events_for(posthog, user, 1)
        assert proc.pid not in pids  # answered by worker processes
