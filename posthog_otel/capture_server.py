"""A loopback stand-in for PostHog's capture API, for tests and examples.

It speaks the real wire format: ``POST /batch/`` with a JSON body (gzip when the request says
``Content-Encoding: gzip``) holding ``api_key``, ``batch`` and ``sent_at``. It records every
request and can be scripted to fail: a status code (with headers such as ``Retry-After``), a
connection closed mid-request, or a stall.

    with CaptureServer() as server:
        client = Client("phc_test", host=server.url)
        ...
        server.wait_for_events(3)

``GET /_stats`` answers ``{"events": N, "unique": N}`` (unique uuids) for load tests run from
another process. It binds 127.0.0.1 only. For a persistent store with a web viewer use ``posthog-otel sink``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["CaptureServer", "Fault", "Received"]


@dataclass
class Fault:
    """What to do with one request instead of answering 200."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    stall: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw_size: int
    status: int


class CaptureServer:
    def __init__(self, port: int = 0, keep_requests: bool = True) -> None:
        self.requests: list[Received] = []
        self.keep_requests = keep_requests
        self.event_count = 0
        self.uuids: set[str] = set()
        self.faults: deque[Fault] = deque()
        self._lock = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/_stats":
                    self.send_error(404)
                    return
                with server._lock:
                    stats = {"events": server.event_count, "unique": len(server.uuids)}
                payload = json.dumps(stats).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with server._lock:
                    fault = server.faults.popleft() if server.faults else None
                if fault is not None and fault.reset:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    self.connection.close()
                    self.close_connection = True
                    return
                if fault is not None and fault.stall:
                    time.sleep(fault.stall)
                data = raw
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(raw)
                body = json.loads(data) if data else None
                status = fault.status if fault is not None and fault.status else 200
                if status == 200 and (not isinstance(body, dict) or not body.get("api_key")):
                    status = 401
                record = Received(self.path, dict(self.headers.items()), body, len(raw), status)
                with server._lock:
                    if server.keep_requests:
                        server.requests.append(record)
                    if status == 200 and body:
                        server.event_count += len(body["batch"])
                        server.uuids.update(e.get("uuid") for e in body["batch"])
                    server._lock.notify_all()
                payload = b'{"status":"Ok"}' if status == 200 else b'{"type":"error"}'
                self.send_response(status)
                for name, value in (fault.headers if fault else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> CaptureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    @property
    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.status == 200]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for r in self.accepted if r.body for event in r.body["batch"]]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]

    def wait_for_events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                events = [
                    e for r in self.requests if r.status == 200 and r.body for e in r.body["batch"]
                ]
                if len(events) >= count:
                    return events
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} events, got {len(events)}")
                self._lock.wait(remaining)


def main(argv: list[str] | None = None) -> None:
    """``python -m posthog_otel.capture_server [--port N]``: serve until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with CaptureServer(port=args.port, keep_requests=False) as server:
        print(server.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
