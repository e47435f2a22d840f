"""The sink's request handler: routing for the capture, OTLP, viewer and JSON API endpoints.

Routes:

* ``POST /batch/``, ``/capture/``, ``/e/``, ``/i/v0/e/`` (with or without the trailing ``/``):
  PostHog capture (see :mod:`.ingest`). ``OPTIONS`` answers CORS preflights for browser SDKs.
* ``POST /i/v1/logs``, ``/i/v1/traces`` (also ``/v1/logs``, ``/v1/traces``): OTLP/HTTP
  (see :mod:`.otlp`).
* ``POST /i/v1/analytics/events`` (posthog-node's capture v1), ``POST /flags/?v=2``, ``GET
  /array/<token>/config`` and ``/array/<token>/config.js`` (posthog-js): see
  :mod:`.client_endpoints`; with CORS, like the capture endpoints.
* ``GET /``, ``/person?distinct_id=…``, ``/events/<id>``, ``/traces/<trace id>``: the viewer
  (404 pages for an unknown person, event or trace); ``GET /_live?…``: the
  list's refresh data; ``GET /static/…``: its stylesheet and script.
* ``GET /api/events?event=&distinct_id=&session_id=&trace_id=&kind=&status=&after_id=&limit=``:
  ``{"count": n, "events": [...]}`` newest first; ``GET /api/events/<id>``;
  ``DELETE /api/events`` empties the store; ``GET /healthz``.

Every request is answered: bad input gets a clear 4xx, an unexpected failure a logged 500, and
a storage failure a 503 with ``Retry-After`` so SDKs retry.

Usage (what :class:`~posthog_otel.sink.server.SinkServer` does)::

    httpd = SinkHTTPServer(("127.0.0.1", 8010), SinkHandler)
    httpd.sink = sink          # anything with .store (EventStore) and .notify()
    httpd.serve_forever()
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from . import client_endpoints, pages
from .ai_view import generations_page
from .hosts import HostGuard
from .ingest import MAX_BODY_BYTES, ingest_capture
from .otlp import ingest_otlp
from .records import KINDS, STATUS_ACCEPTED, STATUS_REJECTED, StoredEvent
from .static import STATIC
from .store import EventFilter, EventStore
from .trace_view import trace_page


class Sink(Protocol):
    """What the handler needs from the server that owns it."""

    @property
    def store(self) -> EventStore: ...

    @property
    def guard(self) -> HostGuard: ...

    def notify(self) -> None:
        """Wake threads waiting for events to arrive."""


__all__ = ["SinkHTTPServer", "SinkHandler"]

_log = logging.getLogger("posthog.otel.sink")

_CAPTURE_PATHS = frozenset({"/batch", "/capture", "/e", "/i/v0/e"})
_OTLP_PATHS = {
    "/i/v1/logs": "logs",
    "/i/v1/traces": "traces",
    "/v1/logs": "logs",
    "/v1/traces": "traces",
}
_FLAGS_PATHS = frozenset({"/flags", "/decide"})
_EVENT_PAGE = re.compile(r"^/events/(\d{1,18})$")
_TRACE_PAGE = re.compile(r"^/traces/([0-9a-fA-F]{1,64})/?$")
_EVENT_API = re.compile(r"^/api/events/(\d{1,18})$")
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class SinkHTTPServer(ThreadingHTTPServer):
    sink: Sink
    request_queue_size = 128


class SinkHandler(BaseHTTPRequestHandler):
    server: SinkHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "posthog-otel-sink"
    sys_version = ""

    # -- plumbing -------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s %s", self.address_string(), format % args)

    @property
    def sink(self) -> Sink:
        return self.server.sink

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        path = parts.path or "/"
        return path, parse_qs(parts.query, keep_blank_values=False)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
        self._send(status, body, "application/json", headers)

    def _html(self, status: int, html: str) -> None:
        self._send(
            status,
            html.encode("utf-8"),
            "text/html; charset=utf-8",
            {
                "Content-Security-Policy": _CSP,
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
            },
        )

    def _lower_headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def _read_body(self) -> bytes | None:
        """The request body (chunked or sized); None after answering 411/413 itself."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self.close_connection = True
            self._json(411, _error("length_required", "Content-Length is required"))
            return None
        try:
            length = int(length_text)
        except ValueError:
            self.close_connection = True
            self._json(400, _error("invalid_payload", "Content-Length is not a number"))
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._json(413, _error("payload_too_large", f"body is over {MAX_BODY_BYTES} bytes"))
            return None
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                self.close_connection = True
                self._json(400, _error("invalid_payload", "bad chunked encoding"))
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                self._json(413, _error("payload_too_large", f"body is over {MAX_BODY_BYTES} bytes"))
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _guarded(self, handler: Any) -> None:
        try:
            if self._refused():
                return
            handler()
        except (BrokenPipeError, ConnectionResetError):
            _log.debug("client went away during %s %s", self.command, self.path)
        except sqlite3.Error:
            _log.exception("sink storage failed during %s %s", self.command, self.path)
            self._try_answer(
                503,
                _error("storage_error", "the sink could not store the request"),
                {"Retry-After": "1"},
            )
        except Exception:
            _log.exception("sink failed on %s %s", self.command, self.path)
            self._try_answer(
                500, _error("server_error", "unexpected error in the sink; see its log")
            )

    def _refused(self) -> bool:
        """Answer 403 to a ``Host`` this sink does not serve (DNS rebinding), or a
        ``DELETE`` from another site's page; True when refused."""
        guard = self.sink.guard
        if not guard.allows_host(self.headers.get("Host")):
            problem = "host_not_allowed", "this Host is not served; see the sink's --allow-host"
        elif self.command == "DELETE" and not guard.allows_origin(self.headers.get("Origin")):
            problem = "origin_not_allowed", "state changes are accepted from the sink's own pages"
        else:
            return False
        self.close_connection = True  # the body (if any) is not read
        self._json(403, _error(*problem), {"Connection": "close"})
        return True

    def _try_answer(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        with contextlib.suppress(OSError):
            self._json(status, payload, headers)

    # -- methods --------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_HEAD(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def do_DELETE(self) -> None:
        self._guarded(self._delete)

    def do_OPTIONS(self) -> None:
        self._guarded(self._options)

    # -- POST -----------------------------------------------------------------------------

    def _post(self) -> None:
        path, query = self._route()
        normalized = path.rstrip("/") or "/"
        if normalized in _CAPTURE_PATHS:
            self._capture(path, query)
        elif normalized in _OTLP_PATHS:
            self._otlp(path, _OTLP_PATHS[normalized], query)
        elif normalized == client_endpoints.CAPTURE_V1_PATH:
            self._capture_v1()
        elif normalized in _FLAGS_PATHS:
            if self._read_body() is not None:
                self._json(200, client_endpoints.flags_answer(), _CORS)
        else:
            self._read_body()
            self._json(404, _error("not_found", f"no endpoint at {path}"))

    def _capture(self, path: str, query: dict[str, list[str]]) -> None:
        raw = self._read_body()
        if raw is None:
            return
        now = time.time()
        answer = ingest_capture(
            raw, endpoint=path, headers=self._lower_headers(), query=query, now=now
        )
        self.sink.store.insert(answer.records, received_at=now)
        if answer.status != 200:
            _log.info("rejected %s request: %s", path, answer.body.get("detail"))
        self._json(answer.status, answer.body, _CORS)
        self.sink.notify()

    def _capture_v1(self) -> None:
        raw = self._read_body()
        if raw is None:
            return
        now = time.time()
        answer = client_endpoints.capture_v1(raw, headers=self._lower_headers(), now=now)
        self.sink.store.insert(answer.records, received_at=now)
        self._json(answer.status, answer.body, _CORS)
        self.sink.notify()

    def _otlp(self, path: str, signal: str, query: dict[str, list[str]]) -> None:
        raw = self._read_body()
        if raw is None:
            return
        now = time.time()
        answer = ingest_otlp(
            raw,
            signal=signal,
            endpoint=path,
            headers=self._lower_headers(),
            now=now,
            query=query,
        )
        self.sink.store.insert(answer.records, received_at=now)
        if answer.status != 200:
            _log.info("rejected OTLP %s request (%s)", signal, answer.status)
        self._send(answer.status, answer.body, answer.content_type, _CORS)
        self.sink.notify()

    # -- GET ------------------------------------------------------------------------------

    def _get(self) -> None:
        path, query = self._route()
        store = self.sink.store
        if path == "/":
            self._html(200, pages.index_page(store, pages.ViewQuery.from_query(query)))
        elif path == "/llm":
            self._html(200, generations_page(store))
        elif path == "/_live":
            self._json(
                200,
                pages.live_update(store, pages.ViewQuery.from_query(query)),
                {"Cache-Control": "no-store"},
            )
        elif path == "/person":
            distinct_id = (query.get("distinct_id") or [""])[0]
            if not distinct_id:
                self._html(400, pages.not_found_page(store, "Which person? Add ?distinct_id=…"))
            else:
                self._page(
                    pages.person_page(store, distinct_id),
                    f"No event of the person {distinct_id!r} has arrived.",
                )
        elif (match := _EVENT_PAGE.match(path)) is not None:
            self._page(pages.event_page(store, int(match[1])), f"There is no event {match[1]}.")
        elif path.startswith("/traces/"):
            trace = _TRACE_PAGE.match(path)
            self._page(
                trace_page(store, trace[1]) if trace else None,
                f"No span or event of the trace {path[len('/traces/') :][:80]!r} has arrived.",
            )
        elif path in STATIC:
            body, content_type = STATIC[path]
            self._send(200, body, content_type, {"Cache-Control": "no-cache"})
        elif path == "/api/events":
            self._api_events(query)
        elif (match := _EVENT_API.match(path)) is not None:
            found = store.get(int(match[1]))
            if found is None:
                self._json(404, _error("not_found", f"no event {match[1]}"))
            else:
                self._json(200, found.to_json())
        elif path == "/healthz":
            self._json(200, {"status": "ok", "events": store.count(), "db": store.path})
        elif (config := client_endpoints.config_token(path)) is not None:
            token, as_script = config
            if as_script:
                script = client_endpoints.remote_config_script(token).encode()
                self._send(200, script, "application/javascript", _CORS)
            else:
                self._json(200, client_endpoints.remote_config(token), _CORS)
        elif path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
        else:
            self._json(404, _error("not_found", f"nothing at {path}"))

    def _page(self, html: str | None, missing: str) -> None:
        """A viewer page, or the not-found page with HTTP 404 when there is none."""
        if html is None:
            self._html(404, pages.not_found_page(self.sink.store, missing))
        else:
            self._html(200, html)

    def _api_events(self, query: dict[str, list[str]]) -> None:
        def first(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        try:
            limit = int(first("limit") or 100)
            after_text = first("after_id")
            after_id = int(after_text) if after_text else None
        except ValueError:
            self._json(400, _error("invalid_query", "limit and after_id must be integers"))
            return
        kind = first("kind")
        status = first("status")
        if kind is not None and kind not in KINDS:
            self._json(400, _error("invalid_query", f"kind must be one of {', '.join(KINDS)}"))
            return
        if status is not None and status not in (STATUS_ACCEPTED, STATUS_REJECTED):
            self._json(400, _error("invalid_query", "status must be accepted or rejected"))
            return
        where = EventFilter(
            event=first("event"),
            distinct_id=first("distinct_id"),
            session_id=first("session_id"),
            trace_id=first("trace_id"),
            kind=kind,
            status=status,
            after_id=after_id,
            limit=max(1, min(limit, 10_000)),
        )
        rows: list[StoredEvent] = self.sink.store.query(where)
        self._json(200, {"count": len(rows), "events": [row.to_json() for row in rows]})

    # -- DELETE / OPTIONS -----------------------------------------------------------------

    def _delete(self) -> None:
        path, _ = self._route()
        if path.rstrip("/") == "/api/events":
            deleted = self.sink.store.clear()
            self._json(200, {"deleted": deleted})
            self.sink.notify()
        else:
            self._json(404, _error("not_found", f"nothing to delete at {path}"))

    def _options(self) -> None:
        path, _ = self._route()
        normalized = path.rstrip("/") or "/"
        known = (
            normalized in _CAPTURE_PATHS
            or normalized in _OTLP_PATHS
            or normalized in _FLAGS_PATHS
            or normalized == client_endpoints.CAPTURE_V1_PATH
            or client_endpoints.config_token(normalized) is not None
        )
        if known:
            self._send(204, b"", "text/plain", {**_CORS, **_PREFLIGHT})
        else:
            self._json(404, _error("not_found", f"nothing at {path}"))


_CORS = {"Access-Control-Allow-Origin": "*"}
_PREFLIGHT = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Content-Encoding, Authorization",
    "Access-Control-Max-Age": "600",
}


def _error(code: str, detail: str) -> dict[str, Any]:
    kind = "server_error" if code in ("server_error", "storage_error") else "invalid_request"
    return {"type": kind, "code": code, "detail": detail, "attr": None}
