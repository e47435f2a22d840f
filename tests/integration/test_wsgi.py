"""WSGI middleware under a real WSGI server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import requests

import posthog_otel as posthog
from posthog_otel.instrumentors.wsgi import PosthogWSGIMiddleware, request_info_from_environ
from posthog_otel.testing import CapturedEvents
from tests.support.routing import route_to
from tests.support.servers import wsgi_server

HEADERS = {"X-POSTHOG-DISTINCT-ID": "wsgi-user", "X-POSTHOG-SESSION-ID": "wsgi-session"}


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    path = environ["PATH_INFO"]
    if path == "/boom":
        posthog.tag("step", "wsgi")
        raise LookupError("no such order")
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterator[bytes]:
            for i in range(3):
                posthog.capture("chunk_sent", properties={"i": i})
                yield f"{i}:{posthog.get_context_distinct_id()}\n".encode()

        return body()
    posthog.capture("page_viewed")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(posthog.get_tags().get("$request_path")).encode()]


def test_request_context_and_streaming_body(events: CapturedEvents) -> None:
    with wsgi_server(PosthogWSGIMiddleware(app)) as url:
        assert requests.get(url + "/orders?id=3", headers=HEADERS, timeout=10).text == "/orders"
        assert requests.get(url + "/stream", headers=HEADERS, timeout=10).text == (
            "0:wsgi-user\n1:wsgi-user\n2:wsgi-user\n"
        )
    (page,) = events.named("page_viewed")
    assert page["distinct_id"] == "wsgi-user"
    assert page["properties"]["$current_url"] == url + "/orders?id=3"
    assert page["properties"]["$session_id"] == "wsgi-session"
    chunks = events.named("chunk_sent")
    assert [c["distinct_id"] for c in chunks] == ["wsgi-user"] * 3
    assert posthog.current_scope() is None


def test_exception_is_captured_once_and_reraised(events: CapturedEvents) -> None:
    with wsgi_server(PosthogWSGIMiddleware(app)) as url:
        assert requests.get(url + "/boom", headers=HEADERS, timeout=10).status_code == 500
    (event,) = events.named("$exception")
    assert event["distinct_id"] == "wsgi-user"
    assert event["properties"]["step"] == "wsgi"
    assert event["properties"]["$exception_list"][0]["type"] == "LookupError"


def test_request_info_from_environ() -> None:
    info = request_info_from_environ(
        {
            "REQUEST_METHOD": "POST",
            "wsgi.url_scheme": "https",
            "HTTP_HOST": "shop.internal",
            "SCRIPT_NAME": "/api",
            "PATH_INFO": "/pay now",
            "QUERY_STRING": "a=1",
            "REMOTE_ADDR": "10.1.2.3",
            "HTTP_X_POSTHOG_DISTINCT_ID": "u",
        }
    )
    assert info.url == "https://shop.internal/api/pay%20now?a=1"
    assert info.path == "/api/pay%20now"
    assert info.headers["x-posthog-distinct-id"] == "u"
    assert info.peer == "10.1.2.3"


def test_with_contrib_wsgi_middleware(events: CapturedEvents) -> None:
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider

    route_to(TracerProvider())
    wrapped = OpenTelemetryMiddleware(PosthogWSGIMiddleware(app))
    with wsgi_server(wrapped) as url:
        assert requests.get(url + "/orders", headers=HEADERS, timeout=10).text == "/orders"
    (page,) = events.named("page_viewed")
    assert page["distinct_id"] == "wsgi-user"
    assert len(page["properties"]["$trace_id"]) == 32
