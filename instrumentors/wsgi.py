"""PostHog context for any WSGI app (gunicorn, waitress, uWSGI, werkzeug).

    from .wsgi import PosthogWSGIMiddleware

    app = PosthogWSGIMiddleware(app, trust_proxy_headers=True)

Each request runs in its own PostHog context (see :mod:`posthog_otel.instrumentors._request` for the
rules), which stays current while the response body is produced, also for streaming bodies.
Exceptions raised by the app are captured once and re-raised. Works with or without contrib's
``OpenTelemetryMiddleware``; put ours inside it so its server span is current when we tag.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from posthog_otel.propagation.baggage import sanitize_header_value

from ._request import (
    RequestContext,
    RequestInfo,
    RequestOptions,
    capture_request_exception,
    enter_request,
    exit_request,
)

__all__ = ["PosthogWSGIMiddleware", "request_info_from_environ"]

_logger = logging.getLogger("posthog.otel")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def request_info_from_environ(environ: Mapping[str, Any]) -> RequestInfo:
    """A :class:`RequestInfo` from a WSGI environ (PEP 3333)."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    if "CONTENT_TYPE" in environ:
        headers["content-type"] = environ["CONTENT_TYPE"]
    scheme = environ.get("wsgi.url_scheme", "http")
    host = (
        environ.get("HTTP_HOST")
        or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    )
    path = quote(
        environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/%;:@&=+$,!~*'()"
    )
    query = environ.get("QUERY_STRING")
    url = f"{scheme}://{host}{path}" + (f"?{query}" if query else "")
    return RequestInfo(
        method=environ.get("REQUEST_METHOD", "GET"),
        url=url,
        path=path or "/",
        headers=headers,
        peer=sanitize_header_value(environ.get("REMOTE_ADDR")),
    )


class _ScopedBody:
    """The app's response iterable, produced with the request's context current."""

    def __init__(self, body: Iterable[bytes], request: RequestContext) -> None:
        self._body = body
        self._iterator: Iterator[bytes] | None = None
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = iter(self._body)
        self._request.attach()
        try:
            return next(self._iterator)
        finally:
            self._request.detach()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                self._request.attach()
                close()
        finally:
            exit_request(self._request)


class PosthogWSGIMiddleware:
    """WSGI middleware; options as :class:`posthog_otel.instrumentors._request.RequestOptions`."""

    def __init__(self, app: WSGIApp, **options: Any) -> None:
        self.app = app
        self.options = RequestOptions(**options)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        try:
            request = enter_request(request_info_from_environ(environ), environ, self.options)
        except Exception:
            _logger.debug("posthog-otel could not read a WSGI request", exc_info=True)
            return self.app(environ, start_response)
        try:
            body = self.app(environ, start_response)
        except Exception as exc:
            capture_request_exception(exc, self.options)
            exit_request(request)
            raise
        if request is None:
            return body
        request.detach()  # current again only while the body is produced
        return _ScopedBody(body, request)
