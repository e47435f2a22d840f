"""Flask: instrument_app and the instrumentor, with and without contrib's FlaskInstrumentor,
streaming bodies, exception capture, and an end-to-end run across processes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import flask
import pytest
import requests
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import posthog_otel as posthog
from posthog_otel import PosthogSpanProcessor, global_client
from posthog_otel.instrumentors.flask import (
    PosthogFlaskInstrumentor,
    instrument_app,
    uninstrument_app,
)
from posthog_otel.spans import record_exception as span_exceptions
from posthog_otel.testing import CapturedEvents
from posthog_otel.testing.capture_server import CaptureServer
from tests.support.e2e import HEADERS, check_end_to_end, start_downstream
from tests.support.procs import BIN, free_port, start, stop, wait_until_up
from tests.support.routing import route_to
from tests.support.servers import wsgi_server


def _make_app() -> flask.Flask:
    app = flask.Flask("shop")

    @app.route("/whoami")
    def whoami() -> dict[str, Any]:
        posthog.tag("view", "whoami")
        posthog.capture("page_viewed")
        return {"distinct_id": posthog.get_context_distinct_id(), "tags": posthog.get_tags()}

    @app.route("/boom")
    def boom() -> str:
        posthog.tag("step", "charge")
        raise RuntimeError("card declined")

    @app.route("/missing")
    def missing() -> str:
        flask.abort(404)

    @app.route("/handled")
    def handled() -> str:
        raise LookupError("handled by the app")

    @app.errorhandler(LookupError)
    def on_lookup(exc: LookupError) -> tuple[str, int]:
        return "handled", 409

    @app.route("/stream")
    def stream() -> flask.Response:
        def chunks() -> Iterator[str]:
            for i in range(3):
                posthog.capture("chunk_sent", properties={"i": i})
                yield f"{i}:{posthog.get_context_distinct_id()}\n"

        return flask.Response(chunks(), mimetype="text/plain")

    @app.route("/stream-ctx")
    def stream_with_context() -> flask.Response:
        @flask.stream_with_context
        def chunks() -> Iterator[str]:
            for i in range(2):
                posthog.capture("chunk_sent", properties={"path": flask.request.path})
                yield f"{i}:{posthog.get_context_distinct_id()}\n"

        return flask.Response(chunks(), mimetype="text/plain")

    return app


@pytest.fixture
def provider(events: CapturedEvents) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """An SDK provider with our span processor and the record_exception hook (as in prod)."""
    client = global_client.get_client()
    spans = InMemorySpanExporter()
    sdk = TracerProvider()
    sdk.add_span_processor(PosthogSpanProcessor(client))
    sdk.add_span_processor(SimpleSpanProcessor(spans))
    span_exceptions.hook_record_exception(lambda: client)
    route_to(sdk)
    yield sdk, spans
    span_exceptions.unhook_record_exception()
    sdk.shutdown()


def _clean_context() -> bool:
    current = otel_context.get_current()
    return posthog.current_scope() is None and not trace.get_current_span(current).is_recording()


def test_instrument_app_request_context_and_options(events: CapturedEvents) -> None:
    app = _make_app()
    instrument_app(
        app,
        extra_tags=lambda request: {"endpoint": request.endpoint},
        request_filter=lambda request: request.path != "/health",
        tag_map=lambda tags: {k: v for k, v in tags.items() if k != "$raw_user_agent"},
    )
    assert instrument_app(app) is app  # idempotent

    @app.before_request
    def user_hook() -> None:
        posthog.tag("hook", "ran")  # the app's own hooks run inside the request context

    @app.route("/health")
    def health() -> str:
        return str(posthog.get_context_distinct_id())

    with wsgi_server(app) as url:
        body = requests.get(url + "/whoami?x=1", headers=HEADERS, timeout=10).json()
        filtered = requests.get(url + "/health", headers=HEADERS, timeout=10).text
    assert body["distinct_id"] == "browser-user"
    tags = body["tags"]
    assert tags["endpoint"] == "whoami"  # extra_tags got flask.request
    assert tags["hook"] == "ran"
    assert tags["$current_url"] == url + "/whoami?x=1"
    assert tags["$request_path"] == "/whoami"
    assert tags["$ip"] == "127.0.0.1"
    assert "$raw_user_agent" not in tags
    assert filtered == "None"
    (page,) = events.named("page_viewed")
    assert page["distinct_id"] == "browser-user"
    assert page["properties"]["$session_id"] == "browser-session"


def test_exceptions_captured_once_only_for_500s(events: CapturedEvents) -> None:
    app = instrument_app(_make_app())
    with wsgi_server(app) as url:
        assert requests.get(url + "/boom", headers=HEADERS, timeout=10).status_code == 500
        assert requests.get(url + "/missing", headers=HEADERS, timeout=10).status_code == 404
        assert requests.get(url + "/handled", headers=HEADERS, timeout=10).status_code == 409
    (exc,) = events.named("$exception")
    assert exc["distinct_id"] == "browser-user"
    assert exc["properties"]["step"] == "charge"
    assert exc["properties"]["$request_path"] == "/boom"
    (entry,) = exc["properties"]["$exception_list"]
    assert entry["type"] == "RuntimeError"
    assert entry["mechanism"]["handled"] is False
    assert entry["stacktrace"]["frames"][-1]["function"].endswith("boom")


def test_propagated_exception_captured_once(events: CapturedEvents) -> None:
    app = instrument_app(_make_app())
    app.testing = True  # PROPAGATE_EXCEPTIONS: the exception leaves wsgi_app too
    with pytest.raises(RuntimeError):
        app.test_client().get("/boom", headers=HEADERS)
    (exc,) = events.named("$exception")
    assert exc["distinct_id"] == "browser-user"
    assert exc["properties"]["step"] == "charge"
    assert _clean_context()


def test_capture_exceptions_off(events: CapturedEvents) -> None:
    app = instrument_app(_make_app(), capture_exceptions=False)
    with wsgi_server(app) as url:
        assert requests.get(url + "/boom", headers=HEADERS, timeout=10).status_code == 500
    assert events.named("$exception") == []


def test_streaming_responses_keep_the_context(events: CapturedEvents) -> None:
    app = instrument_app(_make_app())
    with wsgi_server(app) as url:
        plain = requests.get(url + "/stream", headers=HEADERS, timeout=10).text
        with_ctx = requests.get(url + "/stream-ctx", headers=HEADERS, timeout=10).text
    assert plain == "0:browser-user\n1:browser-user\n2:browser-user\n"
    assert with_ctx == "0:browser-user\n1:browser-user\n"
    chunks = events.named("chunk_sent")
    assert [c["distinct_id"] for c in chunks] == ["browser-user"] * 5
    assert [c["properties"].get("path") for c in chunks[3:]] == ["/stream-ctx"] * 2
    # in one thread, nothing is left behind
    client = app.test_client()
    assert b"".join(client.get("/stream", headers=HEADERS).response) == plain.encode()
    assert _clean_context()


def test_uninstrument_app(events: CapturedEvents) -> None:
    app = _make_app()
    original = app.wsgi_app
    instrument_app(app)
    uninstrument_app(app)
    assert app.wsgi_app == original
    assert app.test_client().get("/whoami", headers=HEADERS).json["distinct_id"] is None
    assert app.test_client().get("/boom").status_code == 500
    assert events.named("$exception") == []


def test_instrumentor_instruments_new_apps_and_restores_flask(events: CapturedEvents) -> None:
    before = vars(flask.app.Flask)["__init__"]
    instrumentor = PosthogFlaskInstrumentor()
    instrumentor.instrument(trust_proxy_headers=True)
    try:
        app = _make_app()
        body = app.test_client().get(
            "/whoami", headers={**HEADERS, "X-Forwarded-For": "198.51.100.4"}
        )
        assert body.json["distinct_id"] == "browser-user"
        assert body.json["tags"]["$ip"] == "198.51.100.4"
        with wsgi_server(app) as url:
            assert requests.get(url + "/boom", headers=HEADERS, timeout=10).status_code == 500
    finally:
        instrumentor.uninstrument()
    assert vars(flask.app.Flask)["__init__"] is before
    later = _make_app()
    assert "posthog_otel" not in later.extensions
    assert len(events.named("$exception")) == 1


@pytest.mark.parametrize("order", ["contrib_first", "ours_first", "automatic"])
def test_with_contrib_flask_instrumentation(
    order: str, events: CapturedEvents, provider: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    sdk, spans = provider
    ours = PosthogFlaskInstrumentor()
    contrib = FlaskInstrumentor()
    if order == "automatic":
        contrib.instrument(tracer_provider=sdk)
        ours.instrument()
        app = _make_app()  # flask.Flask is now contrib's subclass; both instrument it
        assert type(app) is not flask.app.Flask
    elif order == "contrib_first":
        app = _make_app()
        FlaskInstrumentor.instrument_app(app, tracer_provider=sdk)
        instrument_app(app)
    else:
        app = _make_app()
        instrument_app(app)
        FlaskInstrumentor.instrument_app(app, tracer_provider=sdk)
    try:
        with wsgi_server(app) as url:
            page = requests.get(url + "/whoami", headers=HEADERS, timeout=10).json()
            assert requests.get(url + "/boom", headers=HEADERS, timeout=10).status_code == 500
            streamed = requests.get(url + "/stream", headers=HEADERS, timeout=10).text
        client = app.test_client()
        assert client.get("/whoami", headers=HEADERS).json["distinct_id"] == "browser-user"
        assert _clean_context()  # no span or scope left current in the serving thread
    finally:
        if order == "automatic":
            contrib.uninstrument()
            ours.uninstrument()
        else:
            FlaskInstrumentor.uninstrument_app(app)
    assert page["distinct_id"] == "browser-user"
    assert page["tags"]["view"] == "whoami"
    assert streamed == "0:browser-user\n1:browser-user\n2:browser-user\n"
    sdk.force_flush()
    finished = {s.name: s for s in spans.get_finished_spans()}
    boom_span = finished["GET /boom"]
    attributes = boom_span.attributes or {}
    assert attributes["posthog.distinct_id"] == "browser-user"
    assert attributes["posthog.tag.$request_path"] == "/boom"
    (exc,) = events.named("$exception")
    assert exc["distinct_id"] == "browser-user"
    assert exc["properties"]["step"] == "charge"
    assert exc["properties"]["$trace_id"] == format(boom_span.context.trace_id, "032x")
    whoami_traces = [
        format(s.context.trace_id, "032x")
        for s in spans.get_finished_spans()
        if s.name == "GET /whoami"
    ]
    assert [e["properties"]["$trace_id"] for e in events.named("page_viewed")] == whoami_traces


def test_end_to_end_flask_with_downstream(capture_server: CaptureServer) -> None:
    downstream, downstream_url = start_downstream(capture_server)
    port = free_port()
    env = {
        "PORT": str(port),
        "DOWNSTREAM_URL": downstream_url,
        "POSTHOG_API_KEY": "phc_e2e",
        "POSTHOG_HOST": capture_server.url,
        "OTEL_SERVICE_NAME": "flask-shop",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    upstream = start(
        [
            str(BIN / "opentelemetry-instrument"),
            str(BIN / "python"),
            "tests/support/apps/flask_shop.py",
        ],
        env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(downstream_url + "/health", downstream)
        wait_until_up(base + "/health", upstream)
        response = requests.get(base + "/checkout", headers=HEADERS, timeout=20)
        streamed = requests.get(base + "/stream", headers=HEADERS, timeout=20).text
    finally:
        _, upstream_err = stop(upstream)
        stop(downstream)
    assert response.status_code == 500, upstream_err
    assert streamed == "0:browser-user\n1:browser-user\n"
    check_end_to_end(capture_server, "RuntimeError")
    assert len(capture_server.named("chunk_sent")) == 2
    (root,) = [e for e in capture_server.events if e["event"] == "GET /checkout"]
    assert root["properties"]["$request_path"] == "/checkout"


def test_switching_posthog_off_switches_the_flask_instrumentor_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import wrapt

    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "flask, posthog")
    instrumentor = PosthogFlaskInstrumentor()
    instrumentor.instrument()
    try:
        assert not isinstance(vars(flask.app.Flask)["__init__"], wrapt.FunctionWrapper)
        assert "posthog_otel" not in _make_app().extensions
    finally:
        instrumentor.uninstrument()
