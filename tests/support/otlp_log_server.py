"""A loopback OTLP/HTTP logs receiver that can be scripted to fail, for the logs export tests.

It reads what a real exporter sends to ``POST /i/v1/logs`` (protobuf, gzip or not) with
opentelemetry-proto's generated classes and keeps each request's records, headers and arrival
time. Faults, one per request in order: a status with headers (``429`` + ``Retry-After``), a
stall, or ``max_records`` (answer 413 when a request holds more records than that).

    with OtlpLogServer() as server:
        server.fail_next(Answer(status=429, headers={"Retry-After": "1"}))
        ...
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

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .waiting import wait_until


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0


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
    headers: dict[str, str]
    status: int
    records: list[LogRow]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def decode(raw: bytes) -> list[LogRow]:
    message = ExportLogsServiceRequest()
    message.ParseFromString(raw)
    rows = []
    for resource_logs in message.resource_logs:
        resource = {kv.key: _value(kv.value) for kv in resource_logs.resource.attributes}
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                rows.append(
                    LogRow(
                        body=_value(record.body),
                        severity_number=record.severity_number,
                        severity_text=record.severity_text,
                        attributes={kv.key: _value(kv.value) for kv in record.attributes},
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        scope=scope_logs.scope.name,
                        resource=resource,
                    )
                )
    return rows


class OtlpLogServer:
    def __init__(self, max_records: int | None = None) -> None:
        self.requests: list[Request] = []
        self.answers: deque[Answer] = deque()
        self.max_records = max_records  # more records in one request: 413
        self._lock = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._lock:
                    answer = server.answers.popleft() if server.answers else Answer()
                if answer.stall:
                    time.sleep(answer.stall)
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                records = decode(raw) if self.path == "/i/v1/logs" else []
                status = answer.status if self.path == "/i/v1/logs" else 404
                if (
                    status == 200
                    and server.max_records is not None
                    and len(records) > server.max_records
                ):
                    status = 413
                with server._lock:
                    server.requests.append(
                        Request(time.monotonic(), dict(self.headers.items()), status, records)
                    )
                    server._lock.notify_all()
                self.send_response(status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> OtlpLogServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def fail_next(self, *answers: Answer) -> None:
        with self._lock:
            self.answers.extend(answers)

    def records(self) -> list[LogRow]:
        """Records of the requests answered 200."""
        with self._lock:
            return [r for req in self.requests if req.status == 200 for r in req.records]

    def wait_for_records(self, count: int, timeout: float = 10.0) -> list[LogRow]:
        wait_until(lambda: len(self.records()) >= count, timeout=timeout)
        return self.records()


@contextmanager
def otlp_log_server(max_records: int | None = None) -> Iterator[OtlpLogServer]:
    with OtlpLogServer(max_records) as server:
        yield server
