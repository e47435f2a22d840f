"""A loopback OTLP/HTTP traces receiver that can be scripted to fail, for export tests.

It decodes ``POST /i/v1/traces`` (protobuf, gzip) with opentelemetry-proto's generated classes
and records each request: its time, headers, status and span names. Scripted answers
(:class:`Answer`) are consumed one per request; ``max_spans`` answers 413 to a request holding
more spans; ``down=True`` refuses connections (the listener is closed).

    with OtlpServer(max_spans=4) as server:
        server.script(Answer(429, {"Retry-After": "1"}))
        ...
        server.wait_for_spans(10)
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .waiting import wait_until


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0


@dataclass
class Request:
    at: float
    headers: dict[str, str]
    status: int
    spans: list[Any]
    resource: dict[str, Any]


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class OtlpServer:
    def __init__(self, max_spans: int | None = None) -> None:
        self.requests: list[Request] = []
        self.max_spans = max_spans
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._lock:
                    answer = server._answers.popleft() if server._answers else Answer()
                if answer.stall:
                    time.sleep(answer.stall)
                try:
                    if self.headers.get("Content-Encoding") == "gzip":
                        raw = gzip.decompress(raw)
                    message = ExportTraceServiceRequest.FromString(raw)
                except Exception:  # a body cut short by a client that gave up
                    message = ExportTraceServiceRequest()
                    answer = Answer(400)
                spans: list[Any] = []
                resource: dict[str, Any] = {}
                for resource_spans in message.resource_spans:
                    resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        spans.extend(scope_spans.spans)
                status = answer.status
                if status == 200 and server.max_spans is not None and len(spans) > server.max_spans:
                    status = 413
                with server._lock:
                    server.requests.append(
                        Request(time.monotonic(), dict(self.headers.items()), status, spans, resource)
                    )
                self.send_response(status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> OtlpServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self._answers.extend(answers)

    def accepted_spans(self) -> list[Any]:
        with self._lock:
            return [span for r in self.requests if r.status == 200 for span in r.spans]

    def wait_for_spans(self, count: int, timeout: float = 10.0) -> list[Any]:
        wait_until(lambda: len(self.accepted_spans()) >= count, timeout=timeout)
        return self.accepted_spans()
