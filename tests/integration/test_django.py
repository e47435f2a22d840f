"""Django: the contexts middleware (sync with the test client, async under uvicorn), the
instrumentor, contrib's Django instrumentation alongside, and an end-to-end run across processes."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from asgiref.sync import iscoroutinefunction

import posthog_otel as posthog
from posthog_otel import global_client
from posthog_otel.instrumentors.django import (
    MIDDLEWARE_PATH,
    PosthogContextMiddleware,
    PosthogDjangoInstrumentor,
    with_posthog_middleware,
)
from posthog_otel.testing import CapturedEvents, memory_client
from posthog_otel.testing.capture_server import CaptureServer
from tests.support.apps.celery_tasks import make_app
from tests.support.e2e import HEADERS, check_end_to_end, start_celery_worker, start_downstream
from tests.support.procs import BIN, ROOT, free_port, start, stop, wait_until_up
from tests.support.servers import uvicorn_server
from tests.support.waiting import wait_until

SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
COMMON = "django.middleware.common.CommonMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
CONTRIB = "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"
RECORDING = "tests.support.apps.django_site.middleware.RecordingPosthogMiddleware"
EXPLODING = "tests.support.apps.django_site.middleware.ExplodingMiddleware"
STACK = [SESSION, COMMON, AUTH, MIDDLEWARE_PATH]
META = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in HEADERS.items()}


def _configure_django() -> None:
    import django
    from django.conf import settings

    if not settings.configured:
        from tests.support.apps.django_site import settings as site

        values = {name: getattr(site, name) for name in dir(site) if name.isupper()}
        db = os.path.join(tempfile.mkdtemp(prefix="posthog-otel-django-"), "db.sqlite3")
        values["DATABASES"] = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db}}
        settings.configure(**values)
        django.setup()
        from django.core.management import call_command

        call_command("migrate", run_syncdb=True, verbosity=0)


@pytest.fixture(scope="module", autouse=True)
def _django() -> None:
    _configure_django()


@pytest.fixture
def user() -> Iterator[Any]:
    from django.contrib.auth.models import User

    created = User.objects.create_user("ada", email="ada@example.com", password="pw")
    yield created
    created.delete()


def _client() -> Any:
    from django.test import Client

    return Client(raise_request_exception=False, **META)


def _settings(**values: Any) -> Any:
    from django.test import override_settings

    values.setdefault("MIDDLEWARE", STACK)
    return override_settings(**values)


# -- sync, Django's test client -------------------------------------------------------------


def test_header_identity_and_request_tags(events: CapturedEvents) -> None:
    with _settings():
        body = _client().get("/whoami/?q=1").json()
    assert body["distinct_id"] == "browser-user"
    assert body["session_id"] == "browser-session"
    (page,) = events.named("page_viewed")
    props = page["properties"]
    assert page["distinct_id"] == "browser-user"
    assert props["$session_id"] == "browser-session"
    assert props["$current_url"] == "http://testserver/whoami/?q=1"
    assert props["$request_method"] == "GET"
    assert props["$request_path"] == "/whoami/"
    assert props["$ip"] == "127.0.0.1"
    assert props["$user_agent"] == "pytest-browser/1.0"
    assert props["view"] == "whoami"
    assert "email" not in props
    assert posthog.current_scope() is None


def test_authenticated_user_pk_and_email_without_header(events: CapturedEvents, user: Any) -> None:
    from django.test import Client

    with _settings():
        anonymous = Client().get("/whoami/").json()
        client = Client()
        client.force_login(user)
        logged_in = client.get("/whoami/").json()
        client.defaults.update(META)
        with_header = client.get("/whoami/").json()
    assert anonymous["distinct_id"] is None
    assert logged_in["distinct_id"] == str(user.pk)
    assert logged_in["tags"]["email"] == "ada@example.com"
    assert with_header["distinct_id"] == "browser-user"  # the header wins, and no email tag
    assert "email" not in with_header["tags"]
    pages = events.named("page_viewed")
    assert [p["distinct_id"] for p in pages[1:]] == [str(user.pk), "browser-user"]
    assert pages[0]["properties"]["$process_person_profile"] is False


def test_settings_extra_tags_filter_tag_map_proxy_and_client(events: CapturedEvents) -> None:
    own_client, own_events = memory_client()
    with _settings(
        POSTHOG_MW_EXTRA_TAGS=lambda request: {"tenant": request.headers.get("X-Tenant")},
        POSTHOG_MW_REQUEST_FILTER=lambda request: request.path != "/health/",
        POSTHOG_MW_TAG_MAP=lambda tags: {k: v for k, v in tags.items() if k != "$user_agent"},
        POSTHOG_MW_TRUST_PROXY_HEADERS=True,
        POSTHOG_MW_CLIENT=own_client,
    ):
        client = _client()
        tags = client.get(
            "/whoami/", HTTP_X_TENANT="acme", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1"
        ).json()["tags"]
        assert client.get("/boom/").status_code == 500
        filtered = client.get("/health/")
    assert tags["tenant"] == "acme"
    assert tags["$ip"] == "203.0.113.9"
    assert "$user_agent" not in tags
    assert filtered.status_code == 200
    # POSTHOG_MW_CLIENT receives the middleware's exception capture
    assert events.named("$exception") == []
    (exc,) = own_events.named("$exception")
    assert exc["properties"]["tenant"] is None


def test_dotted_path_settings_and_bad_settings_are_ignored(events: CapturedEvents) -> None:
    with _settings(
        POSTHOG_MW_EXTRA_TAGS="tests.integration.test_django.tenant_tags",
        POSTHOG_MW_TAG_MAP=42,
        POSTHOG_MW_CAPTURE_EXCEPTIONS="yes",
        POSTHOG_MW_CLIENT=object(),
    ):
        tags = _client().get("/whoami/").json()["tags"]
        assert _client().get("/boom/").status_code == 500
    assert tags["tenant"] == "dotted"
    assert len(events.named("$exception")) == 1  # invalid value: the default (True)


def tenant_tags(request: Any) -> dict[str, str]:
    return {"tenant": "dotted"}


def test_view_exception_captured_once_with_request_context(events: CapturedEvents) -> None:
    with _settings():
        client = _client()
        assert client.get("/boom/").status_code == 500
        assert client.get("/missing/").status_code == 404
    (exc,) = events.named("$exception")
    props = exc["properties"]
    assert exc["distinct_id"] == "browser-user"
    assert props["$session_id"] == "browser-session"
    assert props["step"] == "charge"
    assert props["$request_path"] == "/boom/"
    (entry,) = props["$exception_list"]
    assert entry["type"] == "RuntimeError"
    assert entry["mechanism"]["handled"] is False
    assert entry["stacktrace"]["frames"][-1]["function"] == "boom"


def test_capture_exceptions_off(events: CapturedEvents) -> None:
    with _settings(POSTHOG_MW_CAPTURE_EXCEPTIONS=False):
        assert _client().get("/boom/").status_code == 500
    assert events.named("$exception") == []


def test_exception_in_inner_middleware_captured_once(events: CapturedEvents) -> None:
    with _settings(MIDDLEWARE=[*STACK, EXPLODING]):
        assert _client().get("/mw-boom/").status_code == 500
    (exc,) = events.named("$exception")
    assert exc["distinct_id"] == "browser-user"
    assert exc["properties"]["step"] == "middleware"
    assert exc["properties"]["$exception_list"][0]["type"] == "KeyError"


def test_streaming_response_keeps_the_context(events: CapturedEvents) -> None:
    with _settings():
        response = _client().get("/stream/")
        body = b"".join(response.streaming_content).decode()
        response.close()
    assert body == "0:browser-user\n1:browser-user\n2:browser-user\n"
    assert [e["distinct_id"] for e in events.named("chunk_sent")] == ["browser-user"] * 3
    assert posthog.current_scope() is None


def test_with_contrib_django_instrumentation_one_exception(events: CapturedEvents) -> None:
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from posthog_otel import PosthogSpanProcessor
    from posthog_otel.spans import record_exception as span_exceptions

    client = global_client.get_client()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(client))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    span_exceptions.hook_record_exception(lambda: client)
    try:
        with _settings():
            DjangoInstrumentor().instrument(tracer_provider=provider)
            try:
                from django.conf import settings

                assert settings.MIDDLEWARE.index(CONTRIB) < settings.MIDDLEWARE.index(
                    MIDDLEWARE_PATH
                )
                assert _client().get("/boom/").status_code == 500
            finally:
                DjangoInstrumentor().uninstrument()
    finally:
        span_exceptions.unhook_record_exception()
    provider.force_flush()
    (server_span,) = [s for s in spans.get_finished_spans() if s.name == "GET boom/"]
    attributes = server_span.attributes or {}
    assert attributes["posthog.distinct_id"] == "browser-user"
    assert attributes["posthog.tag.$request_path"] == "/boom/"
    (exc,) = events.named("$exception")
    assert exc["distinct_id"] == "browser-user"
    assert exc["properties"]["$trace_id"] == format(server_span.context.trace_id, "032x")
    assert exc["properties"]["step"] == "charge"
    roots = [e for e in events.all if e["event"] == "GET boom/"]
    assert [r["distinct_id"] for r in roots] == ["browser-user"]
    provider.shutdown()


# -- hybrid middleware ----------------------------------------------------------------------


def test_middleware_follows_the_stack_mode() -> None:
    def sync_view(request: Any) -> Any:
        return None

    async def async_view(request: Any) -> Any:
        return None

    with _settings():
        sync_mw = PosthogContextMiddleware(sync_view)
        async_mw = PosthogContextMiddleware(async_view)
    assert not iscoroutinefunction(sync_mw) and not sync_mw.is_async
    assert iscoroutinefunction(async_mw) and async_mw.is_async


def test_async_stack_under_uvicorn(events: CapturedEvents, user: Any) -> None:
    from django.core.asgi import get_asgi_application
    from django.test import Client

    from tests.support.apps.django_site import middleware

    login = Client()
    login.force_login(user)
    cookie = {"Cookie": f"sessionid={login.cookies['sessionid'].value}"}
    middleware.INSTANCES.clear()
    with _settings(MIDDLEWARE=[SESSION, COMMON, AUTH, RECORDING]):
        app = get_asgi_application()
        with uvicorn_server(app) as url:
            by_header = requests.get(url + "/awhoami/", headers=HEADERS, timeout=10).json()
            by_user = requests.get(url + "/awhoami/", headers=cookie, timeout=10).json()
            sync_view = requests.get(url + "/whoami/", headers=cookie, timeout=10).json()
            failed = requests.get(url + "/aboom/", headers=HEADERS, timeout=10)
    (instance,) = middleware.INSTANCES
    assert instance.is_async  # an async stack: no thread hop for our middleware
    assert by_header["distinct_id"] == "browser-user"
    assert by_header["session_id"] == "browser-session"
    assert by_header["tags"]["$request_path"] == "/awhoami/"
    assert by_user["distinct_id"] == str(user.pk)  # from await request.auser()
    assert by_user["tags"]["email"] == "ada@example.com"
    assert sync_view["distinct_id"] == str(user.pk)
    assert failed.status_code == 500
    (exc,) = events.named("$exception")
    assert exc["distinct_id"] == "browser-user"
    assert exc["properties"]["step"] == "acharge"
    assert exc["properties"]["$exception_list"][0]["value"] == "async card declined"


# -- the instrumentor -----------------------------------------------------------------------


def test_insert_position() -> None:
    assert with_posthog_middleware([SESSION, AUTH, COMMON]) == [
        SESSION,
        AUTH,
        MIDDLEWARE_PATH,
        COMMON,
    ]
    assert with_posthog_middleware([CONTRIB, SESSION, AUTH]) == [
        CONTRIB,
        SESSION,
        AUTH,
        MIDDLEWARE_PATH,
    ]
    assert with_posthog_middleware([SESSION, AUTH, CONTRIB]) == [
        SESSION,
        AUTH,
        CONTRIB,
        MIDDLEWARE_PATH,
    ]
    assert with_posthog_middleware((COMMON,)) == [MIDDLEWARE_PATH, COMMON]
    assert with_posthog_middleware([AUTH, MIDDLEWARE_PATH]) is None


def test_instrumentor_inserts_and_removes(events: CapturedEvents) -> None:
    from django.conf import settings

    instrumentor = PosthogDjangoInstrumentor()
    with _settings(MIDDLEWARE=(SESSION, AUTH, COMMON)):
        instrumentor.instrument()
        try:
            assert list(settings.MIDDLEWARE) == [SESSION, AUTH, MIDDLEWARE_PATH, COMMON]
        finally:
            instrumentor.uninstrument()
        assert list(settings.MIDDLEWARE) == [SESSION, AUTH, COMMON]


def test_instrumentor_answers_lifespan_for_the_asgi_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Django rejects lifespan; instrumented, its ASGI handler answers it, still an ASGI 3
    coroutine (servers check), and flushes queued events at shutdown."""
    import asyncio
    import inspect

    from django.core.asgi import get_asgi_application
    from django.core.handlers.asgi import ASGIHandler

    original = ASGIHandler.__call__
    instrumentor = PosthogDjangoInstrumentor()
    instrumentor.instrument()
    try:
        app = get_asgi_application()
        assert inspect.iscoroutinefunction(type(app).__call__)
        flushed: list[str] = []
        monkeypatch.setattr(
            "posthog_otel.instrumentors._lifespan.flush_pending",
            lambda: flushed.append("flushed") or True,
        )
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return inbox.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append({**message, "after_flush": bool(flushed)})

        asyncio.run(app({"type": "lifespan"}, receive, send))
    finally:
        instrumentor.uninstrument()
    assert sent == [
        {"type": "lifespan.startup.complete", "after_flush": False},
        {"type": "lifespan.shutdown.complete", "after_flush": True},
    ]
    assert ASGIHandler.__call__ is original


def test_instrumentor_inserts_lazily_when_django_builds_the_chain(events: CapturedEvents) -> None:
    from django.conf import settings

    instrumentor = PosthogDjangoInstrumentor()
    instrumentor.instrument()
    try:
        with _settings(MIDDLEWARE=[SESSION, AUTH]):  # settings changed after instrument()
            body = _client().get("/whoami/").json()
            assert settings.MIDDLEWARE == [SESSION, AUTH, MIDDLEWARE_PATH]
    finally:
        instrumentor.uninstrument()
    assert body["distinct_id"] == "browser-user"
    with _settings(MIDDLEWARE=[SESSION, AUTH]):
        assert _client().get("/whoami/").json()["distinct_id"] is None  # removed again


# -- end to end -----------------------------------------------------------------------------


def test_end_to_end_django_with_downstream_and_celery(
    capture_server: CaptureServer, tmp_path: Path
) -> None:
    """``opentelemetry-instrument`` Django: a browser request calls a downstream service,
    enqueues a Celery task run by a real worker, and fails; every process's events carry the
    browser's person, session and the view's tags."""
    broker = tmp_path / "broker"
    make_app(broker)  # creates the broker folders
    worker = start_celery_worker(capture_server, broker)
    downstream, downstream_url = start_downstream(capture_server)
    port = free_port()
    env = {
        "PORT": str(port),
        "DJANGO_SETTINGS_MODULE": "tests.support.apps.django_site.settings",
        "CELERY_BROKER_DIR": str(broker),
        "DOWNSTREAM_URL": downstream_url,
        "POSTHOG_API_KEY": "phc_e2e",
        "POSTHOG_HOST": capture_server.url,
        "OTEL_SERVICE_NAME": "django-shop",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    upstream = start(
        [
            str(BIN / "opentelemetry-instrument"),
            str(BIN / "python"),
            "-m",
            "tests.support.apps.django_site.serve",
        ],
        env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(downstream_url + "/health", downstream)
        wait_until_up(base + "/health/", upstream)
        response = requests.get(base + "/checkout/", headers=HEADERS, timeout=20)
        task_events = _wait_for_events(capture_server, {"task_ran", "thread_ran"}, worker)
    finally:
        _, upstream_err = stop(upstream)
        stop(downstream)
        stop(worker)
    assert response.status_code == 500, upstream_err
    check_end_to_end(capture_server, "RuntimeError")
    (root,) = [e for e in capture_server.events if e["event"] == "GET checkout/"]
    assert root["properties"]["$request_path"] == "/checkout/"
    for event in task_events:  # in the worker's task, and in a thread it started
        assert event["distinct_id"] == "browser-user"
        assert event["properties"]["$session_id"] == "browser-session"
        assert event["properties"]["label"] == "checkout"
        assert event["properties"]["cart"] == "c-42"  # the view's tag
        assert event["properties"]["seen_tags"]["cart"] == "c-42"
        assert event["properties"]["$lib"] == "posthog-otel"


def _wait_for_events(
    server: CaptureServer, names: set[str], worker: subprocess.Popen[str], timeout: float = 30
) -> list[dict[str, Any]]:
    def all_names() -> list[dict[str, Any]] | None:
        found = [e for e in server.events if e["event"] in names]
        return found if {e["event"] for e in found} == names else None

    return wait_until(
        all_names,
        timeout=timeout,
        procs={"the Celery worker": worker},
        what=lambda: f"{sorted(names)} from the worker: {server.events}",
    )


_LAZY_SCRIPT = """
import os
from django.conf import settings
from posthog_otel.instrumentors.django import MIDDLEWARE_PATH, PosthogDjangoInstrumentor

PosthogDjangoInstrumentor().instrument()  # before DJANGO_SETTINGS_MODULE is even set
assert not settings.configured
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.support.apps.django_site.settings"  # as manage.py does
from django.core.wsgi import get_wsgi_application

get_wsgi_application()
print(settings.MIDDLEWARE.index(MIDDLEWARE_PATH), len(settings.MIDDLEWARE))
"""


def test_instrumentor_before_django_settings_exist() -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [str(BIN / "python"), "-c", _LAZY_SCRIPT],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "4"]  # after AuthenticationMiddleware, the last one


def test_async_stack_with_contrib_django_instrumentation(events: CapturedEvents) -> None:
    from django.core.asgi import get_asgi_application
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from posthog_otel import PosthogSpanProcessor
    from posthog_otel.spans import record_exception as span_exceptions

    client = global_client.get_client()
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(client))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    span_exceptions.hook_record_exception(lambda: client)
    try:
        with _settings():
            DjangoInstrumentor().instrument(tracer_provider=provider)
            try:
                with uvicorn_server(get_asgi_application()) as url:
                    page = requests.get(url + "/awhoami/", headers=HEADERS, timeout=10).json()
                    failed = requests.get(url + "/aboom/", headers=HEADERS, timeout=10)
            finally:
                DjangoInstrumentor().uninstrument()
    finally:
        span_exceptions.unhook_record_exception()
    provider.force_flush()
    assert page["distinct_id"] == "browser-user"
    assert page["tags"]["view"] == "awhoami"
    assert failed.status_code == 500
    (server_span,) = [s for s in spans.get_finished_spans() if s.name == "GET aboom/"]
    (exc,) = events.named("$exception")
    assert exc["distinct_id"] == "browser-user"
    assert exc["properties"]["step"] == "acharge"
    assert exc["properties"]["$trace_id"] == format(server_span.context.trace_id, "032x")
    (viewed,) = events.named("page_viewed")
    assert viewed["properties"]["$request_path"] == "/awhoami/"
    provider.shutdown()
