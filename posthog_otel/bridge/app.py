"""The bridge as a plain ASGI application (no web framework), served by uvicorn.

Endpoints:

* ``POST /v1/traces``, ``POST /v1/logs``: OTLP/HTTP, ``application/x-protobuf`` or
  ``application/json``, ``Content-Encoding: gzip`` / ``deflate`` / none. Answers in the
  request's content type: 200 with an empty ``Export*ServiceResponse`` (or ``partial_success``
  naming rejected items), 400 with a ``google.rpc.Status`` for undecodable bodies, 401 for
  missing required headers or project key, 403 for too many project keys, 413 over the body
  cap (after decompression), 408 when the body does not arrive within ``body_timeout``, 415
  for other content types or encodings, 429 with ``Retry-After`` when the outgoing queue is
  full (by events or by bytes), 503 with ``Retry-After`` while shutting down or when bodies in
  memory exceed ``max_inflight_bytes`` (one client address may hold at most half of it).
* ``GET /healthz``: liveness, 200 ``{"status": "ok"}`` (503 while shutting down), never
  guarded. Without ``--require-header`` it also shows the counters (``ai_held_*``: generations
  held for late GenAI content records); with it, the counters
  (and the PID) are at ``GET /stats``, which needs the required headers like the exports.

Request bodies are read and decompressed on the event loop, as they arrive (the memory budget
is charged by decompressed bytes). Decoding, mapping and queuing run one request at a time per
process, so back-pressure checks cannot interleave: bodies up to ``INLINE_MAX_BYTES``
(256 KiB) on the event loop itself (fastest: no GIL hand-offs between threads), bigger ones
on a worker thread so the loop keeps answering meanwhile (requests arriving then queue behind
it on that thread). Scale with ``--workers`` (processes)
or more bridges behind a load balancer: nothing is shared (GenAI content records and the
generations held for them, :mod:`.genai_wait`, join only within one process). On shutdown the
held generations are queued before the clients flush.

Usage::

    app = create_app(BridgeSettings.build(api_key="phc_..."))
    uvicorn.run(app, host="127.0.0.1", port=4318)

or ``posthog-otel bridge`` (see :mod:`posthog_otel.bridge.server`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..client import Client
from ..otlp.responses import (
    INTERNAL,
    INVALID_ARGUMENT,
    JSON,
    PERMISSION_DENIED,
    PROTOBUF,
    RESOURCE_EXHAUSTED,
    UNAUTHENTICATED,
    UNAVAILABLE,
    answer_type,
    export_response,
    status_body,
)
from .auth import HeaderGuard, NoProject, Projects
from .limits import BadBody, BodyTooLarge, Inflater, MemoryBudget
from .pipeline import Pipeline
from .settings import SETTINGS_ENV, BridgeSettings

__all__ = ["BridgeApp", "app_from_environment", "create_app"]

_logger = logging.getLogger("posthog.otel.bridge")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_SIGNALS = {"/v1/traces": "traces", "/v1/logs": "logs"}
#: Bodies up to this size (after decompression) are processed on the event loop when no
#: bigger one is being processed on the worker thread; bigger ones go to the worker thread.
INLINE_MAX_BYTES = 256 * 1024
_CODES = {
    400: INVALID_ARGUMENT,
    401: UNAUTHENTICATED,
    403: PERMISSION_DENIED,
    404: INVALID_ARGUMENT,
    405: INVALID_ARGUMENT,
    408: UNAVAILABLE,
    413: RESOURCE_EXHAUSTED,
    415: INVALID_ARGUMENT,
    429: RESOURCE_EXHAUSTED,
    500: INTERNAL,
    503: UNAVAILABLE,
}


class _Disconnected(Exception):
    """The client went away before its body arrived."""


class _OverBudget(Exception):
    """Bodies held by this process would exceed ``max_inflight_bytes``."""


class _TooSlow(Exception):
    """The body did not arrive within ``body_timeout``."""


class BridgeApp:
    """ASGI application; see the module docstring. ``make_client`` builds the client for a
    project key (tests and benchmarks pass their own)."""

    def __init__(
        self,
        settings: BridgeSettings,
        make_client: Callable[[str], Client] | None = None,
    ) -> None:
        self.settings = settings
        self._make_client = make_client or self._default_client
        self._projects: Projects | None = None
        self._guard = HeaderGuard(settings.require_headers)
        self.pipeline = Pipeline(settings)
        self._budget = MemoryBudget(settings.max_inflight_bytes)
        self._tickets = itertools.count()
        self._executor: ThreadPoolExecutor | None = None
        self.draining = False
        self._in_worker = 0  # requests handed to the worker thread and not finished
        self._retry_after = str(settings.retry_after).encode()

    def _default_client(self, api_key: str) -> Client:
        return Client(api_key, self.settings.posthog_host, **self.settings.client_options())

    @property
    def projects(self) -> Projects:
        if self._projects is None:  # also without a lifespan (some test servers skip it)
            self._start()
        assert self._projects is not None
        return self._projects

    def _start(self) -> None:
        settings = self.settings
        if self._projects is None:
            self._projects = Projects(
                settings.api_key,
                settings.key_from_request,
                settings.max_projects,
                self._make_client,
            )
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="posthog-otel-bridge")

    def shutdown(self) -> bool:
        """Stop taking requests and flush every client within ``shutdown_timeout``."""
        self.draining = True
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        held = self.pipeline.close()  # AI events held for late content records: queued now
        if held:
            _logger.info(
                "posthog-otel bridge (pid %d): %d AI event(s) waiting for GenAI content "
                "records sent at shutdown",
                os.getpid(),
                held,
            )
        if self._projects is None:
            return True
        delivered = self._projects.shutdown(self.settings.shutdown_timeout)
        stats = [client.stats() for client in self._projects.clients()]
        _logger.info(
            "posthog-otel bridge (pid %d) stopped: %d events sent, %d dropped, %s",
            os.getpid(),
            sum(s["sent"] for s in stats),
            sum(s["dropped_total"] for s in stats),
            "all delivered" if delivered else "NOT all delivered within the shutdown timeout",
        )
        return delivered

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self._start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, self.shutdown)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        method = scope["method"]
        if path == "/healthz":
            await self._health(method, send, stats=not self.settings.require_headers)
            return
        if path == "/stats":
            if self._guard.allows(_headers(scope)):
                await self._health(method, send, stats=True)
            else:
                await self._error(send, 401, JSON, "missing or wrong authentication header")
            return
        signal = _SIGNALS.get(path)
        if signal is None:
            await _answer(send, 404, JSON, status_body(5, f"no such endpoint {path}", JSON))
            return
        if method != "POST":
            refusal = status_body(INVALID_ARGUMENT, f"{path} takes POST", JSON)
            await _answer(send, 405, JSON, refusal, [(b"allow", b"POST")])
            return
        headers = _headers(scope)
        kind = answer_type(headers.get("content-type"))
        if kind is None:
            given = headers.get("content-type", "")[:100]
            await self._error(
                send, 415, JSON, f"Content-Type {given!r} is not {PROTOBUF} or {JSON}"
            )
            return
        if not self._guard.allows(headers):
            await self._error(send, 401, kind, "missing or wrong authentication header")
            return
        if self.draining:
            await self._error(send, 503, kind, "the bridge is shutting down", retry=True)
            return
        try:
            client = self.projects.client_for(headers)
        except NoProject as refusal:
            await self._error(send, refusal.status, kind, str(refusal))
            return
        if _queue_full(client):
            self.pipeline.count(throttled_requests=1)
            await self._error(send, 429, kind, "the outgoing PostHog queue is full", retry=True)
            return
        encoding = headers.get("content-encoding")
        inflater = Inflater.for_encoding(encoding, self.settings.max_body_bytes)
        if inflater is None:
            await self._error(send, 415, kind, f"Content-Encoding {encoding!r} is not supported")
            return
        declared = headers.get("content-length", "")
        if (
            declared.isdigit()
            and (encoding or "identity").lower() == "identity"
            and int(declared) > self.settings.max_body_bytes
        ):
            await self._error(send, 413, kind, self._too_large())
            return
        ticket = next(self._tickets)
        try:
            try:
                body = await self._read(receive, inflater, ticket, _peer(scope))
            except BodyTooLarge:
                await self._error(send, 413, kind, self._too_large())
                return
            except BadBody as exc:
                self.pipeline.count(bad_requests=1)
                await self._error(send, 400, kind, str(exc))
                return
            except _OverBudget:
                await self._error(
                    send, 503, kind, "too many request bodies in memory; retry", retry=True
                )
                return
            except _TooSlow:
                self.pipeline.count(slow_requests=1)
                await self._error(send, 408, kind, "the body did not arrive in time", close=True)
                return
            except _Disconnected:
                return
            executor = self._executor
            if executor is None:  # shut down while the body was arriving
                await self._error(send, 503, kind, "the bridge is shutting down", retry=True)
                return
            if self._in_worker == 0 and len(body) <= INLINE_MAX_BYTES:
                # Small bodies (a Collector batch of thousands of spans): on the loop, which
                # avoids handing the GIL between threads (15-30% faster under load).
                outcome = self.pipeline.process(signal, body, kind, client)
            else:
                self._in_worker += 1
                try:
                    outcome = await asyncio.get_running_loop().run_in_executor(
                        executor, self.pipeline.process, signal, body, kind, client
                    )
                finally:
                    self._in_worker -= 1
        finally:
            self._budget.release(ticket)
        if outcome.status == 200:
            await _answer(
                send, 200, kind, export_response(signal, kind, outcome.rejected, outcome.message)
            )
        else:
            await self._error(
                send, outcome.status, kind, outcome.message, retry=outcome.status == 429
            )

    async def _read(
        self, receive: Receive, inflater: Inflater, ticket: int, peer: str | None
    ) -> bytearray:
        """The decompressed body, charged to the budget as it grows, within ``body_timeout``."""
        budget = self._budget
        deadline = time.monotonic() + self.settings.body_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _TooSlow
            try:
                message = await asyncio.wait_for(receive(), remaining)
            except asyncio.TimeoutError:
                raise _TooSlow from None
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            if chunk:
                inflater.feed(chunk)
                if not budget.reserve(ticket, inflater.size, peer):
                    raise _OverBudget
            if not message.get("more_body", False):
                return inflater.finish()

    def _too_large(self) -> str:
        return f"body is over {self.settings.max_body_bytes} bytes once decompressed"

    async def _error(
        self,
        send: Send,
        status: int,
        kind: str,
        message: str,
        *,
        retry: bool = False,
        close: bool = False,
    ) -> None:
        extra = [(b"retry-after", self._retry_after)] if retry else []
        if close:
            extra.append((b"connection", b"close"))
        body = status_body(_CODES.get(status, INTERNAL), message, kind)
        await _answer(send, status, kind, body, extra)

    async def _health(self, method: str, send: Send, *, stats: bool) -> None:
        if method not in ("GET", "HEAD"):
            await _answer(send, 405, JSON, b"{}", [(b"allow", b"GET")])
            return
        status = 503 if self.draining else 200
        if not stats:
            body = b'{"status": "%s"}' % (b"shutting_down" if self.draining else b"ok")
            await _answer(send, status, JSON, body if method == "GET" else b"")
            return
        clients = self._projects.clients() if self._projects is not None else []
        counts = [client.stats() for client in clients]
        report = {
            "status": "shutting_down" if self.draining else "ok",
            "pid": os.getpid(),
            "time": time.time(),
            "projects": len(clients),
            "queued": sum(s["queued"] for s in counts),
            "queued_bytes": sum(s.get("queued_bytes", 0) for s in counts),
            "sent": sum(s["sent"] for s in counts),
            "dropped": sum(s["dropped_total"] for s in counts),
            "body_bytes_held": self._budget.held,
            **self.pipeline.counters,
            **self.pipeline.genai_wait.stats(),
        }
        body = json.dumps(report).encode() if method == "GET" else b""
        await _answer(send, status, JSON, body)


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _peer(scope: Scope) -> str | None:
    """The client's address (its share of the memory budget), when the server gives it."""
    client = scope.get("client")
    return str(client[0]) if client else None


def _queue_full(client: Client) -> bool:
    """Whether the client's outgoing queue is full, by events or by bytes."""
    stats = client.stats()
    settings = client.settings
    return bool(
        stats["queued"] >= settings.max_queue_size
        or stats.get("queued_bytes", 0) >= settings.max_queue_bytes
    )


async def _answer(
    send: Send,
    status: int,
    content_type: str,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(
    settings: BridgeSettings, make_client: Callable[[str], Client] | None = None
) -> BridgeApp:
    """The ASGI application for ``settings``."""
    return BridgeApp(settings, make_client)


def app_from_environment() -> BridgeApp:
    """Factory for uvicorn's worker processes: settings from ``POSTHOG_OTEL_BRIDGE_SETTINGS``."""
    from .log_setup import configure_logging

    text = os.environ.get(SETTINGS_ENV)
    settings = BridgeSettings.from_json(text) if text else BridgeSettings.build()
    configure_logging(settings.verbose)
    from .protocol import configure

    configure(settings.header_timeout)
    return create_app(settings)
