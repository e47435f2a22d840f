"""A loopback stand-in for PostHog's capture API, for tests and examples.

It speaks the real wire format: ``POST /batch/`` with a JSON body (gzip when the request says
``Content-Encoding: gzip``) holding ``api_key``, ``batch`` and ``sent_at``. It records every
request and can be scripted to fail: a status code (with headers such as ``Retry-After``), a
connection closed mid-request, or a stall. A stalled request whose client gave up (closed the
connection) before the stall ended is not processed or stored, like a server whose request
timed out, so a retried batch is never stored twice. ``down()`` / ``up()`` stop and restart the
listener on the same port (open connections are cut), keeping what was received.

    with CaptureServer() as server:
        client = Client("phc_test", host=server.url)
        server.fail_next(Fault(status=503), Fault(stall=2.0), Fault())  # Fault(): a normal 200
        ...
        server.wait_for_events(3)

``GET /_stats`` answers ``{"events": N, "unique": N}`` (unique uuids) for load tests run from
another process. It binds 127.0.0.1 only. For a persistent store with a web viewer use ``posthog-otel sink``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import select
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
    reset: bool = False  # close the connection (RST) after reading the body, answer nothing
    stall: float = 0.0  # seconds to wait first; not processed at all if the client gave up


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
        self.abandoned = 0  # stalled requests whose client gave up: not processed
        self.resets = 0
        self._lock = threading.Condition()
        self._down = False
        self._connections: set[socket.socket] = set()
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
                    with server._lock:
                        server.resets += 1
                    self._hang_up()
                    return
                if fault is not None and fault.stall:
                    time.sleep(fault.stall)
                    if _peer_closed(self.connection):
                        with server._lock:
                            server.abandoned += 1
                        self._hang_up()
                        return
                data = raw
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(raw)
                body = json.loads(data) if data else None
                status = fault.status if fault is not None and fault.status else 200
                if status == 200 and (not isinstance(body, dict) or not body.get("api_key")):
                    status = 401
                record = Received(self.path, dict(self.headers.items()), body, len(raw), status)
                payload = b'{"status":"Ok"}' if status == 200 else b'{"type":"error"}'
                # Store and answer as one step, so down() never cuts a stored request's answer
                # (the client would retry a batch the server already has).
                with server._lock:
                    if server._down:
                        self._hang_up()
                        return
                    if server.keep_requests:
                        server.requests.append(record)
                    if status == 200 and body:
                        server.event_count += len(body["batch"])
                        server.uuids.update(e.get("uuid") for e in body["batch"])
                    server._lock.notify_all()
                    self.send_response(status)
                    for name, value in (fault.headers if fault else {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            def _hang_up(self) -> None:
                with contextlib.suppress(OSError):
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    self.connection.close()
                self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request: Any, client_address: Any) -> None:
                with server._lock:
                    server._connections.add(request)
                super().process_request(request, client_address)

            def shutdown_request(self, request: Any) -> None:
                with server._lock:
                    server._connections.discard(request)
                super().shutdown_request(request)

        self._server_class = Server
        self._httpd = Server(("127.0.0.1", port), Handler)
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, args=(self._httpd,), daemon=True)

    @staticmethod
    def _serve(httpd: ThreadingHTTPServer) -> None:
        httpd.serve_forever(poll_interval=0.05)

    def __enter__(self) -> CaptureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._down:
            self._httpd.shutdown()
        self._httpd.server_close()

    def down(self) -> None:
        """Stop listening and cut open connections: PostHog unreachable. State is kept."""
        with self._lock:
            if self._down:
                return
            self._down = True
            connections = list(self._connections)
        self._httpd.shutdown()
        self._httpd.server_close()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def up(self, timeout: float = 10.0) -> None:
        """Listen again on the same port after :meth:`down`."""
        if not self._down:
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpd = self._server_class(
                    ("127.0.0.1", self.port), self._httpd.RequestHandlerClass
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._httpd = httpd
        self._thread = threading.Thread(target=self._serve, args=(httpd,), daemon=True)
        self._thread.start()
        with self._lock:
            self._down = False

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


def _peer_closed(connection: socket.socket) -> bool:
    """Whether the client closed its end (EOF waiting to be read) or the socket is broken."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def main(argv: list[str] | None = None) -> None:
    """``python -m posthog_otel.testing.capture_server [--port N]``: serve until interrupted."""
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
