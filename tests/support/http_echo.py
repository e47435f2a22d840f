"""Loopback HTTP helpers for the propagation tests.

``EchoServer`` records the headers of every request it gets and answers with them as JSON
(``/redirect?to=URL`` answers 302 to URL). ``loopback_names`` makes chosen public-looking
host names resolve to 127.0.0.1 inside the test process and refuses to resolve any other
non-loopback name, so no test can reach anything but this machine.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class EchoServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, list[str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                headers: dict[str, list[str]] = {}
                for name, value in self.headers.items():
                    headers.setdefault(name.lower(), []).append(value)
                server.requests.append(headers)
                parts = urlsplit(self.path)
                if parts.path == "/redirect":
                    target = parse_qs(parts.query)["to"][0]
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(headers).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, host: str = "127.0.0.1", path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    def last(self) -> dict[str, list[str]]:
        return self.requests[-1]

    def __enter__(self) -> EchoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def loopback_names(*names: str) -> Iterator[None]:
    """Resolve ``names`` to 127.0.0.1; refuse every other non-loopback name."""
    real = socket.getaddrinfo
    mapped = {n.lower() for n in names}

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.lower() in mapped:
            return real("127.0.0.1", port, *args, **kwargs)
        if name in _LOOPBACK:
            return real(host, port, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, f"test resolver refuses {name!r}")

    socket.getaddrinfo = resolve
    try:
        yield
    finally:
        socket.getaddrinfo = real
