"""Loopback servers the benchmarks post to, each in its own process (its work does not share
the benchmark's GIL); each prints its URL on its first line of output.

    with otlp_receiver() as url:       # reads each OTLP/HTTP body, answers 200
        ...
    with url_process([sys.executable, "-m", "posthog_otel.testing.capture_server"]) as url:
        ...
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_RECEIVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
"""


@contextmanager
def url_process(args: list[str]) -> Iterator[str]:
    """Run ``args``; yield the URL it prints first; terminate it on exit."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def otlp_receiver() -> Iterator[str]:
    """A loopback OTLP/HTTP receiver that reads each body and answers 200."""
    with url_process([sys.executable, "-c", _RECEIVER]) as url:
        yield url
