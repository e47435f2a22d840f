"""An HTTP proxy on 127.0.0.1 that forwards every request to one upstream and keeps a copy.

The peer tests put it between a real SDK and the sink or the bridge, so a test can look at
the raw requests the SDK made (headers, chunked or gzip bodies) and, with
``POSTHOG_OTEL_RECORD_CORPUS=1``, save them as the recorded corpus under tests/corpus/.

    with RecordingProxy(sink.url) as proxy:
        run_sdk(host=proxy.url)
    proxy.requests  # [Recorded(method, path, headers, body, status), ...]
    save_corpus("my-sdk", proxy.requests)  # tests/corpus/my-sdk-<n>.json, when recording
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

# what a replay needs; others (dates, lengths, user agents, request ids) are left out
KEPT_HEADERS = ("content-type", "content-encoding", "authorization", "transfer-encoding", "origin")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        self.requests: list[Recorded] = []
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                kept = {k: v for k, v in headers.items() if k in KEPT_HEADERS}
                forwarded = {k: v for k, v in headers.items() if k not in ("transfer-encoding",)}
                forwarded["content-length"] = str(len(body))
                forwarded["host"] = target.netloc
                connection = http.client.HTTPConnection(
                    target.hostname or "127.0.0.1", target.port, timeout=30
                )
                try:
                    connection.request(self.command, self.path, body=body, headers=forwarded)
                    answer = connection.getresponse()
                    data = answer.read()
                    status, answer_headers = answer.status, answer.getheaders()
                finally:
                    connection.close()
                proxy.requests.append(Recorded(self.command, self.path, kept, body, status))
                self.send_response(status)
                for name, value in answer_headers:
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_OPTIONS = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def save_corpus(name: str, requests: list[Recorded]) -> None:
    """With ``POSTHOG_OTEL_RECORD_CORPUS=1``, write each request as ``tests/corpus/<name>-<n>.json``
    (tests/unit/sink/test_recorded_corpus.py replays them); otherwise do nothing."""
    if os.environ.get("POSTHOG_OTEL_RECORD_CORPUS") != "1":
        return
    CORPUS.mkdir(exist_ok=True)
    for index, request in enumerate(requests):
        entry = {
            "sdk": name,
            "method": request.method,
            "path": request.path,
            "headers": request.headers,
            "status": request.status,
            "body_base64": base64.b64encode(request.body).decode(),
        }
        (CORPUS / f"{name}-{index}.json").write_text(json.dumps(entry, indent=1) + "\n")
