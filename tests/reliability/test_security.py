"""Security: egress of PostHog context, the project API key, hostile inbound identity, PII.

- **Egress.** Public-looking host names are made to resolve to a loopback echo server inside
  the test (every other name is refused, so nothing real is contacted). Whatever the outbound
  path (our requests/httpx instrumentors, ``posthog_otel.inject(headers, url=...)``, or a plain
  ``propagate.inject`` under an HTTP CLIENT span), no ``posthog.*`` baggage member and no
  ``X-POSTHOG-*`` header reaches a non-target; internal targets get them.
- **The API key** never appears in log output (all of it, at DEBUG, during every kind of
  delivery failure, also with ``debug=True``), in exception messages, in ``on_error``
  arguments' text, in ``stats()``, in ``repr()`` of the client, its settings, transport,
  exporter or processor, nor in the sink viewer's pages and JSON API.
- **Inbound identity and tags** from hostile requests (raw sockets: control characters,
  C1 controls, huge values, hundreds of baggage members) arrive in events sanitised and
  bounded.
- **PII exclusion**: ``Client(exclude_properties=[...])`` removes properties (tags, caller
  properties, span-derived events) in one place; ``PosthogPropagator(exclude_tags=[...])`` /
  ``POSTHOG_OTEL_EXCLUDE_TAGS`` keep tags off the wire and ignore them on extract.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import posthog_otel as ph
from posthog_otel import Client, PosthogSpanProcessor
from posthog_otel.config import ClientSettings
from posthog_otel.context import current_scope
from posthog_otel.delivery.transport import Transport
from posthog_otel.propagation.propagator import PosthogPropagator
from posthog_otel.propagation.settings import PropagationSettings
from posthog_otel.testing.capture_server import CaptureServer, Fault
from tests.support.http_echo import EchoServer, loopback_names
from tests.support.routing import route_to
from tests.support.servers import uvicorn_server, wsgi_server

API_KEY = "phc_SECURITY_TEST_KEY_a1b2c3d4e5f6"
PUBLIC = "api.partner-payments.com"
INTERNAL = "billing"
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
EMAIL = "ada" + "@example.com"  # built, so source lines in $exception_list do not hold it
SECRET = "s3" + "cret"
IP = ".".join(["203", "0", "113", "9"])


# -- egress ---------------------------------------------------------------------------------


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server, loopback_names(PUBLIC, INTERNAL):
        yield server


@pytest.fixture
def textmap() -> Iterator[PosthogPropagator]:
    previous = propagate.get_global_textmap()
    ours = PosthogPropagator(exclude_tags=["email", "*_token"])
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator(), ours])
    )
    yield ours
    propagate.set_global_textmap(previous)


def _in_context(fn: Callable[[], None]) -> None:
    ctx = baggage.set_baggage("vendor.flag", "on")
    ctx = baggage.set_baggage("posthog.tag.from_other_code", "x", ctx)
    ctx = baggage.set_baggage("posthog.tag.session_token", "tok-123", ctx)  # excluded by pattern
    token = otel_context.attach(ctx)
    try:
        with ph.new_context():
            ph.identify_context("user-7")
            ph.set_context_session("session-7")
            ph.tag("plan", "pro")
            ph.tag("email", EMAIL)
            fn()
    finally:
        otel_context.detach(token)


def _posthog_headers(headers: dict[str, list[str]]) -> list[str]:
    found = [name for name in headers if name.startswith("x-posthog")]
    members = ",".join(headers.get("baggage", [])).split(",")
    return found + [m.strip() for m in members if m.strip().startswith("posthog.")]


def _send_requests(url: str) -> None:
    session = requests.Session()
    session.trust_env = False
    assert session.get(url, timeout=10).status_code == 200


def _send_httpx(url: str) -> None:
    with httpx.Client(trust_env=False) as client:
        assert client.get(url, timeout=10).status_code == 200


def _send_httpx_async(url: str) -> None:
    async def call() -> int:
        async with httpx.AsyncClient(trust_env=False) as client:
            return (await client.get(url, timeout=10)).status_code

    assert asyncio.run(call()) == 200


def _http_client(url: str, headers: dict[str, Any]) -> None:
    host_port = url.split("/")[2]
    host, port = host_port.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/", headers={k: str(v) for k, v in headers.items()})
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def _send_inject_helper(url: str) -> None:
    _http_client(url, ph.inject({}, url=url))


def _send_client_span(url: str) -> None:
    """No instrumentor: a CLIENT span naming the URL, then the global propagators."""
    tracer = TracerProvider().get_tracer("security")
    with tracer.start_as_current_span(
        "GET",
        kind=trace.SpanKind.CLIENT,
        attributes={"http.request.method": "GET", "url.full": url},
    ):
        headers: dict[str, Any] = {}
        propagate.inject(headers)
    _http_client(url, headers)


SENDERS: dict[str, Callable[[str], None]] = {
    "requests": _send_requests,
    "httpx": _send_httpx,
    "httpx_async": _send_httpx_async,
    "inject_helper": _send_inject_helper,
    "client_span": _send_client_span,
}


@pytest.mark.parametrize("sender", list(SENDERS))
def test_nothing_posthog_reaches_a_public_host_and_pii_tags_stay_home(
    echo: EchoServer, textmap: PosthogPropagator, sender: str
) -> None:
    from posthog_otel.instrumentors.httpx import PosthogHttpxInstrumentor
    from posthog_otel.instrumentors.requests import PosthogRequestsInstrumentor

    PosthogRequestsInstrumentor().instrument()
    PosthogHttpxInstrumentor().instrument()
    try:
        send = SENDERS[sender]
        _in_context(lambda: send(echo.url(PUBLIC)))
        public = echo.last()
        _in_context(lambda: send(echo.url(INTERNAL)))
        internal = echo.last()
    finally:
        PosthogRequestsInstrumentor().uninstrument()
        PosthogHttpxInstrumentor().uninstrument()

    assert _posthog_headers(public) == [], public
    if sender in ("inject_helper", "client_span"):  # the stock propagators ran: theirs stay
        assert "vendor.flag=on" in ",".join(public.get("baggage", []))
    assert "user-7" not in json.dumps(public)

    carried = _posthog_headers(internal)
    assert "x-posthog-distinct-id" in carried
    assert "posthog.distinct_id=user-7" in carried
    assert "posthog.tag.plan=pro" in carried
    assert "posthog.tag.from_other_code=x" in carried
    wire = json.dumps(internal)
    assert "email" not in wire and "example.com" not in wire  # exclude_tags
    assert "session_token" not in wire and "tok-123" not in wire  # pattern, other code's entry


def test_exclude_tags_from_the_environment_and_on_extract(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POSTHOG_OTEL_EXCLUDE_TAGS", " email , *_TOKEN ,")
    propagator = PosthogPropagator()
    assert propagator.settings.exclude_tags == ("email", "*_TOKEN")
    assert "exclude_tags" in repr(propagator)
    carrier = {
        "baggage": "posthog.distinct_id=u1,posthog.tag.Email=a%40b.c,"
        "posthog.tag.api_token=t,posthog.tag.plan=pro",
    }
    scope = current_scope(propagator.extract(carrier, otel_context.Context()))
    assert scope is not None
    assert scope.resolve().tags == {"plan": "pro"}  # any case, patterns too
    # An explicit argument replaces the environment.
    assert PosthogPropagator(exclude_tags=[]).settings.exclude_tags == ()
    assert PropagationSettings.build(exclude_tags="a,b").exclude_tags == ("a", "b")
    with pytest.raises(ValueError, match="exclude_tags"):
        PosthogPropagator(exclude_tags=[1])
    with pytest.raises(ValueError, match="exclude_tags"):
        PosthogPropagator(exclude_tags={"email": True})


def test_celery_task_headers_respect_exclude_tags(textmap: PosthogPropagator) -> None:
    from posthog_otel.instrumentors._celery_headers import write_headers as write_celery_headers

    headers: dict[str, Any] = {}
    _in_context(lambda: write_celery_headers(headers))
    assert "posthog.distinct_id=user-7" in headers.get("baggage", "")
    assert EMAIL not in json.dumps(headers)


# -- the API key ----------------------------------------------------------------------------


def test_api_key_never_in_logs_errors_stats_or_reprs(
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Transport, "backoff_base", 0.01)
    caplog.set_level(logging.DEBUG)  # everything: ours, urllib3, requests
    errors: list[str] = []

    def on_error(exc: Exception, batch: list[dict[str, Any]]) -> None:
        errors.append(f"{exc} {exc!r} {exc.args!r}")
        raise RuntimeError("on_error itself fails")  # logged by the client

    texts: list[str] = []
    with CaptureServer() as server:
        server.fail_next(
            Fault(status=401),
            Fault(status=500),
            Fault(status=500),
            Fault(status=429, headers={"Retry-After": "0"}),
            Fault(status=503),
            Fault(reset=True),
            Fault(status=400),
            Fault(status=413),
            Fault(status=413),
        )
        for options in ({}, {"debug": True}, {"sync_mode": True}):
            client = Client(
                API_KEY,
                host=server.url,
                flush_at=1,
                flush_interval=0.01,
                max_retries=1,
                on_error=on_error,
                **options,
            )
            for i in range(6):
                client.capture("e", distinct_id=f"u{i}", properties={"i": i})
            client.capture("huge", distinct_id="u", properties={"blob": "x" * 1_000_000})
            client.flush(10)
            stats = client.stats()
            texts += [json.dumps(stats), repr(client), repr(client.settings)]
            texts.append(repr(client._transport))
            processor = PosthogSpanProcessor(client)
            texts += [repr(processor), repr(processor.exporter)]
            processor.shutdown()  # it hooks Span.record_exception process-wide until then
            client.shutdown(1)
            logging.getLogger("posthog.otel").setLevel(logging.NOTSET)
        # PostHog unreachable
        down = Client(API_KEY, host="http://127.0.0.1:9", max_retries=1, on_error=on_error)
        down.capture("e", distinct_id="d")
        down.flush(5)
        texts.append(json.dumps(down.stats()))
        down.shutdown(0.5)

    for bad in (
        {"host": "ftp://nope"},
        {"flush_at": "many"},
        {"unknown_option": 1},
        {"exclude_properties": 5},
        {"before_send": 3},
    ):
        with pytest.raises((ValueError, TypeError)) as raised:
            ClientSettings.build(API_KEY, **bad)
        texts.append(f"{raised.value} {raised.value!r}")
        try:  # the client itself logs a bad value instead (the logs are checked below)
            Client(API_KEY, **bad).shutdown(0)
        except (ValueError, TypeError) as error:  # a bad host or an unknown option
            texts.append(f"{error} {error!r}")
    texts.append(repr(ClientSettings.build(API_KEY)))

    out, err = capfd.readouterr()
    assert len(errors) >= 3  # the failures really happened
    assert "HTTP 401" in caplog.text and "on_error" in caplog.text
    for where, text in (
        [("logs", caplog.text), ("stdout", out), ("stderr", err)]
        + [("errors", e) for e in errors]
        + [("text", t) for t in texts]
    ):
        assert API_KEY not in text, f"the API key leaked into {where}: {text[:500]}"


def _sink_pages(url: str) -> dict[str, str]:
    pages: dict[str, str] = {}
    listing = requests.get(url + "/api/events?limit=1000", timeout=10).json()
    rejected = requests.get(url + "/api/events?status=rejected", timeout=10).json()
    ids = [row["id"] for row in listing["events"] + rejected["events"]]
    people = {row["distinct_id"] for row in listing["events"] if row.get("distinct_id")}
    paths = ["/", "/api/events", "/api/events?status=rejected", "/_live", "/healthz"]
    paths += [f"/events/{i}" for i in ids] + [f"/api/events/{i}" for i in ids]
    paths += [f"/person?distinct_id={p}" for p in people]
    for path in paths:
        response = requests.get(url + path, timeout=10)
        assert response.status_code == 200, path
        pages[path] = response.text
    return pages


def _sink_with_events(tmp_path: Path, extra: list[dict[str, Any]]) -> Iterator[str]:
    from posthog_otel.sink.server import SinkServer

    with SinkServer(port=0, db_path=tmp_path / "sink.sqlite3") as sink:
        client = Client(API_KEY, host=sink.url, flush_interval=0.01)
        with ph.new_context():
            ph.identify_context("ada")
            client.capture("signed_up", properties={"plan": "pro"})
            try:
                raise ValueError("boom")
            except ValueError as exc:
                client.capture_exception(exc)
        assert client.flush(10)
        client.shutdown(1)
        # What other SDKs send: one event with a top-level token; a refused batch.
        requests.post(
            sink.url + "/e/",
            json={"token": API_KEY, "event": "js_event", "distinct_id": "bob"},
            timeout=10,
        )
        refused = {"api_key": API_KEY, "batch": [{"event": "", "distinct_id": "x"}]}
        assert requests.post(sink.url + "/batch/", json=refused, timeout=10).status_code == 400
        for body in extra:
            requests.post(sink.url + "/batch/", json=body, timeout=10)
        sink.wait_for(3)
        yield sink.url


def test_api_key_never_in_the_sink_viewer(tmp_path: Path) -> None:
    for url in _sink_with_events(tmp_path, []):
        pages = _sink_pages(url)
        assert any("/events/" in p for p in pages)
        for path, text in pages.items():
            assert API_KEY not in text, f"the API key is shown at {path}"


def test_api_key_in_event_properties_is_not_shown_by_the_sink(tmp_path: Path) -> None:
    js_style = {
        "api_key": API_KEY,
        "batch": [
            {
                "event": "$pageview",
                "distinct_id": "carol",
                "uuid": str(uuid.uuid4()),
                "properties": {"token": API_KEY, "$current_url": "https://x.test/"},
            }
        ],
    }
    for url in _sink_with_events(tmp_path, [js_style]):
        for path, text in _sink_pages(url).items():
            assert API_KEY not in text, f"the API key is shown at {path}"


# -- hostile inbound identity and tags --------------------------------------------------------


def _raw_request(url: str, header_lines: list[bytes]) -> int:
    host, port = url.split("/")[2].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = b"GET /hit HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n"
        sock.sendall(head + b"".join(line + b"\r\n" for line in header_lines) + b"\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return int(response.split(b" ", 2)[1])


HOSTILE = [
    b"X-POSTHOG-DISTINCT-ID: \tevil\x7f\x85\x9b[31m-user\xe2\x80\xae " + b"A" * 5000,
    b"X-POSTHOG-SESSION-ID: " + "sess\u00e9".encode("latin-1") + b"\x80\x9f" + b"\x01" * 0,
    b"X-POSTHOG-WINDOW-ID: " + b" " * 50,
    b"baggage: posthog.tag.ctl%0Akey=line%0D%0Abreak%07,posthog.tag.big="
    + b"v" * 2000
    + b","
    + b",".join(b"posthog.tag.t%d=%d" % (i, i) for i in range(300))
    + b",posthog.distinct_id=from-baggage",
]


def _hostile_app(client: Client) -> tuple[Any, Any]:
    from fastapi import FastAPI

    from posthog_otel.instrumentors.asgi import instrument_app
    from posthog_otel.instrumentors.wsgi import PosthogWSGIMiddleware

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        client.capture("hit")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    fastapi = FastAPI()

    @fastapi.get("/hit")
    async def hit() -> dict[str, str]:
        client.capture("hit")
        return {"ok": "yes"}

    return PosthogWSGIMiddleware(wsgi, client=client), instrument_app(fastapi, client=client)


def _check_bounded(event: dict[str, Any]) -> None:
    props = event["properties"]
    distinct_id = event["distinct_id"]
    assert 0 < len(distinct_id) <= 1000 and not CONTROL.search(distinct_id), distinct_id[:80]
    assert distinct_id.startswith("evil")  # the header won over baggage, sanitised
    session = props.get("$session_id")
    assert session is None or (len(session) <= 1000 and not CONTROL.search(session))
    assert "$window_id" not in props  # blank is absent
    inbound = [k for k in props.get("$context_tags", []) if not k.startswith("$")]
    assert len(inbound) <= 64
    for key in props["$context_tags"]:
        value = props[key]
        assert not CONTROL.search(key)
        if isinstance(value, str):
            assert len(value) <= 1000 and not CONTROL.search(value), (key, value[:80])
    assert "big" not in props  # over 1000 characters: dropped, not truncated silently
    assert props["ctlkey"] == "linebreak"  # control characters removed from key and value
    assert props["t0"] == 0 and "t299" not in props  # the first 64 inbound tags are kept


@pytest.mark.parametrize("server_kind", ["wsgi", "asgi"])
def test_hostile_inbound_identity_and_tags_are_sanitised_and_bounded(server_kind: str) -> None:
    with CaptureServer() as server:
        client = Client(API_KEY, host=server.url, flush_interval=0.01)
        wsgi, asgi = _hostile_app(client)
        serve: Any = wsgi_server if server_kind == "wsgi" else uvicorn_server
        with serve(wsgi if server_kind == "wsgi" else asgi) as url:
            status = _raw_request(url, HOSTILE)
        if status == 200:
            (event,) = server.wait_for_events(1)
            _check_bounded(event)
        else:  # the HTTP server itself refused the bytes: then nothing may have been captured
            assert status == 400
            assert client.flush(5) and server.events == []
        client.shutdown(1)


# -- PII exclusion from events ----------------------------------------------------------------


def test_exclude_properties_removes_pii_from_every_event_path() -> None:
    with CaptureServer() as server:
        client = Client(
            API_KEY,
            host=server.url,
            flush_interval=0.01,
            exclude_properties=["Email", "*_token", "$ip"],
            super_properties={"service": "shop", "deploy_token": SECRET},
        )
        provider = TracerProvider()
        provider.add_span_processor(PosthogSpanProcessor(client))
        route_to(provider)
        try:
            tracer = provider.get_tracer("security")
            with ph.new_context():
                ph.identify_context("ada")
                ph.tag("email", EMAIL)
                ph.tag("plan", "pro")
                ph.tag("$ip", IP)
                client.capture("signed_up", properties={"EMAIL": EMAIL, "api_token": "t", "ok": 1})
                try:
                    raise ValueError("boom")
                except ValueError as exc:
                    client.capture_exception(exc)
                with tracer.start_as_current_span("GET /signup", kind=trace.SpanKind.SERVER):
                    pass
            client.capture_raw(
                "from_bridge", distinct_id="bob", properties={"email": EMAIL, "kept": True}
            )
            assert provider.force_flush(10_000)
            assert client.flush(10)
        finally:
            route_to(None)
            provider.shutdown()
            client.shutdown(1)
        events = {e["event"]: e for e in server.events}
    assert set(events) == {"signed_up", "$exception", "GET /signup", "from_bridge"}
    for event in events.values():
        wire = json.dumps(event)
        assert EMAIL not in wire and SECRET not in wire and IP not in wire, wire
        props = event["properties"]
        assert "email" not in [t.lower() for t in props.get("$context_tags", [])]
        assert props["$lib"] == "posthog-otel"  # the library's own properties stay
    assert events["signed_up"]["properties"]["plan"] == "pro"
    assert events["signed_up"]["properties"]["ok"] == 1
    assert events["signed_up"]["properties"]["service"] == "shop"
    assert events["signed_up"]["properties"]["$context_tags"] == ["plan"]
    assert events["$exception"]["properties"]["$exception_list"]
    assert events["GET /signup"]["distinct_id"] == "ada"
    assert events["from_bridge"]["properties"]["kept"] is True


def test_exclude_properties_is_validated() -> None:
    assert ClientSettings.build(exclude_properties="email, phone").exclude_properties == (
        "email",
        "phone",
    )
    assert ClientSettings.build(exclude_properties=("a",)).exclude_properties == ("a",)
    for bad in (5, [1], {"email": True}, [None]):
        with pytest.raises(ValueError, match="exclude_properties"):
            ClientSettings.build(exclude_properties=bad)
