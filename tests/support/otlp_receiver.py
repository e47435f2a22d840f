"""A loopback OTLP/HTTP receiver for PostHog's ``/i/v1/traces`` and ``/i/v1/logs``, scriptable to
fail, for the traces and logs export tests.

It decodes what an exporter posts (protobuf, gzip or not) with opentelemetry-proto's generated
classes and keeps each request: arrival time, path, headers, status, the spans (raw ``Span``
messages, and the resource's attributes) or the log records (:class:`LogRow`). Scripted
answers (:class:`Answer`: a status, headers such as ``Retry-After``, a stall, a response body
such as a ``partial_success``) are consumed one per request, in order; ``max_spans`` /
``max_records`` answer 413 to a request holding more. The standard paths (``/v1/traces``,
``/v1/logs``, for an app's own exporter) are read too; any other path is answered 404.

    with OtlpReceiver(max_spans=4) as server:
        server.script(Answer(429, {"Retry-After": "1"}))
        ...
        server.wait_for_spans(10)
        server.wait_for_records(3)
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .waiting import wait_until

TRACES = "/i/v1/traces"
LOGS = "/i/v1/logs"


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0
    body: bytes = b""


@dataclass
class LogRow:
    body: Any
    severity_number: int
    severity_text: str
    attributes: dict[str, Any]
    trace_id: str
    span_id: str
    scope: str
    resource: dict[str, Any]


@dataclass
class Request:
    at: float
    path: str
    headers: dict[str, str]
    status: int
    spans: list[Any] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    records: list[LogRow] = field(default_factory=list)


def value_of(value: AnyValue) -> Any:
    """An ``AnyValue`` as Python: arrays as lists, key-value lists as dicts."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def decode_logs(raw: bytes) -> list[LogRow]:
    message = ExportLogsServiceRequest.FromString(raw)
    rows = []
    for resource_logs in message.resource_logs:
        resource = {kv.key: value_of(kv.value) for kv in resource_logs.resource.attributes}
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                rows.append(
                    LogRow(
                        body=value_of(record.body),
                        severity_number=record.severity_number,
                        severity_text=record.severity_text,
                        attributes={kv.key: value_of(kv.value) for kv in record.attributes},
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        scope=scope_logs.scope.name,
                        resource=resource,
                    )
                )
    return rows


def decode_spans(raw: bytes) -> tuple[list[Any], dict[str, Any]]:
    message = ExportTraceServiceRequest.FromString(raw)
    spans: list[Any] = []
    resource: dict[str, Any] = {}
    for resource_spans in message.resource_spans:
        resource = {kv.key: value_of(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            spans.extend(scope_spans.spans)
    return spans, resource


def partial_success(path: str, rejected: int, message: str) -> bytes:
    """The body of a 200 answer that rejects ``rejected`` items of the request."""
    if path == TRACES:
        traces = ExportTraceServiceResponse()
        traces.partial_success.rejected_spans = rejected
        traces.partial_success.error_message = message
        return traces.SerializeToString()
    logs = ExportLogsServiceResponse()
    logs.partial_success.rejected_log_records = rejected
    logs.partial_success.error_message = message
    return logs.SerializeToString()


class OtlpReceiver:
    def __init__(self, max_spans: int | None = None, max_records: int | None = None) -> None:
        self.requests: list[Request] = []
        self.max_spans = max_spans  # more spans in one request: 413
        self.max_records = max_records  # more records in one request: 413
        self._answers: deque[Answer] = deque()
        self._lock = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._lock:
                    answer = server._answers.popleft() if server._answers else Answer()
                if answer.stall:
                    time.sleep(answer.stall)
                request = Request(time.monotonic(), self.path, dict(self.headers.items()), 404)
                traces = self.path.endswith("/v1/traces")
                if traces or self.path.endswith("/v1/logs"):
                    request.status = answer.status
                    try:
                        if self.headers.get("Content-Encoding") == "gzip":
                            raw = gzip.decompress(raw)
                        if traces:
                            request.spans, request.resource = decode_spans(raw)
                        else:
                            request.records = decode_logs(raw)
                    except Exception:  # a body cut short by a client that gave up
                        request.status = 400
                    limit, held = (
                        (server.max_spans, len(request.spans))
                        if traces
                        else (server.max_records, len(request.records))
                    )
                    if request.status == 200 and limit is not None and held > limit:
                        request.status = 413
                with server._lock:
                    server.requests.append(request)
                    server._lock.notify_all()
                body = answer.body if request.status == answer.status else b""
                try:
                    self.send_response(request.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (the delayed-answer tests): recorded above

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def script(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order (then 200)."""
        with self._lock:
            self._answers.extend(answers)

    fail_next = script

    def accepted_spans(self) -> list[Any]:
        """Spans of the requests answered 200."""
        with self._lock:
            return [span for r in self.requests if r.status == 200 for span in r.spans]

    def records(self) -> list[LogRow]:
        """Log records of the requests answered 200."""
        with self._lock:
            return [row for r in self.requests if r.status == 200 for row in r.records]

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[Any]:
        wait_until(lambda: len(self.accepted_spans()) >= count, timeout=timeout)
        return self.accepted_spans()

    def wait_for_records(self, count: int, timeout: float = 10.0) -> list[LogRow]:
        wait_until(lambda: len(self.records()) >= count, timeout=timeout)
        return self.records()


@contextmanager
def otlp_receiver(
    max_spans: int | None = None, max_records: int | None = None
) -> Iterator[OtlpReceiver]:
    with OtlpReceiver(max_spans, max_records) as server:
        yield server
