"""Per-request PostHog context for server middleware: the one place the request rules live.

Every framework module (Django, Flask, ASGI, WSGI) turns its request into a
:class:`RequestInfo` and calls :func:`enter_request` / :func:`exit_request` around the handler:

    scope = enter_request(info, request, options)      # None when request_filter said no
    try:
        response = handler(request)
    except Exception as exc:
        capture_request_exception(exc, options)
        raise
    finally:
        exit_request(scope)

Rules: a non-fresh context per request (a child of whatever is current, e.g. the scope that
contrib's server instrumentation extracted before its span started); identity from
the ``X-POSTHOG-*`` headers (distinct, session, window and device id) and trusted
``posthog.*`` baggage through the configured ``PosthogPropagator`` (headers win); tags
``$current_url``, ``$request_method``, ``$request_path``, ``$ip`` (first X-Forwarded-For address
only when ``trust_proxy_headers``; else the peer address), ``$user_agent``, ``$raw_user_agent``;
then ``extra_tags(request)`` and ``tag_map(tags)``. A framework that knows the authenticated
user passes ``identify``: it is called only when the request carries no distinct id, and its
``(distinct_id, tags)`` fill the gap (Django: the user's pk and an ``email`` tag; its tags go
through ``extra_tags``/``tag_map`` like the others). Exceptions are captured once, with the
request's context. Every user callback is guarded: a failing callback is logged, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate

from posthog_otel import context as contexts
from posthog_otel.propagation.baggage import sanitize_header_value

if TYPE_CHECKING:
    from posthog_otel.client import Client
    from posthog_otel.propagation.propagator import PosthogPropagator

__all__ = [
    "Identify",
    "RequestContext",
    "RequestInfo",
    "RequestOptions",
    "capture_request_exception",
    "enter_request",
    "exit_request",
]

_logger = logging.getLogger("posthog.otel")

ExtraTags = Callable[[Any], Mapping[str, Any] | None]
RequestFilter = Callable[[Any], bool]
TagMap = Callable[[dict[str, Any]], dict[str, Any]]
Identify = Callable[[], "tuple[str | None, Mapping[str, Any] | None] | None"]


@dataclass(frozen=True)
class RequestOptions:
    """Options shared by every server middleware (each framework maps its settings here)."""

    capture_exceptions: bool = True
    client: Client | None = None
    extra_tags: ExtraTags | None = None
    request_filter: RequestFilter | None = None
    tag_map: TagMap | None = None
    trust_proxy_headers: bool = False

    def __post_init__(self) -> None:
        for name in ("extra_tags", "request_filter", "tag_map"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ValueError(f"{name} must be callable, got {value!r}")


@dataclass(frozen=True)
class RequestInfo:
    """A framework-neutral view of an incoming request.

    ``headers`` has lower-case names; ``url`` is the full URL the client asked for.
    """

    method: str
    url: str
    path: str
    headers: Mapping[str, str]
    peer: str | None = None


class _LowerGetter:
    """Getter over a lower-case header mapping (the propagator asks in any case).

    ``lower_case_mapping`` tells :class:`PosthogPropagator` it may read such a carrier with
    ``carrier.get(name.lower())`` itself: the same values, without a call per header.
    """

    lower_case_mapping = True

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        value = carrier.get(key.lower())
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _LowerGetter()


def _inbound_state(headers: Mapping[str, str]) -> tuple[Mapping[str, str], Mapping[str, Any]]:
    """The PostHog state the request carries, read by the configured PosthogPropagator.

    When contrib's middleware already extracted the same headers into the current Context,
    its result is reused instead of parsing them again.
    """
    return _configured_propagator().inbound_state(headers, getter=_GETTER)  # type: ignore[arg-type]


_found: tuple[object, PosthogPropagator | None] = (None, None)  # (global propagator, the PosthogPropagator in it)


def _configured_propagator() -> PosthogPropagator:
    """The PosthogPropagator in the global propagator (or the default one), looked up again
    only when the global propagator is replaced."""
    from posthog_otel.propagation.propagator import default_propagator, find_posthog_propagator

    global _found
    textmap = propagate.get_global_textmap()
    owner, found = _found
    if owner is not textmap:
        found = find_posthog_propagator(textmap)
        _found = (textmap, found)
    return found or default_propagator()


def client_ip(info: RequestInfo, trust_proxy_headers: bool) -> str | None:
    if trust_proxy_headers:
        forwarded = info.headers.get("x-forwarded-for")
        if forwarded:
            first = sanitize_header_value(forwarded.split(",", 1)[0])
            if first:
                return first
    return info.peer


def _request_tags(info: RequestInfo, options: RequestOptions) -> dict[str, Any]:
    tags: dict[str, Any] = {
        "$current_url": info.url,
        "$request_method": info.method,
        "$request_path": info.path,
    }
    ip = client_ip(info, options.trust_proxy_headers)
    if ip:
        tags["$ip"] = ip
    agent = sanitize_header_value(info.headers.get("user-agent"))
    if agent:
        tags["$user_agent"] = agent
        tags["$raw_user_agent"] = agent
    return tags


class RequestContext:
    """The PostHog context of one request: current while attached, closed at the end.

    Streaming bodies detach it when the handler returns and re-attach it around each chunk.
    """

    __slots__ = ("_attached", "_stale", "_token", "scope")

    def __init__(self, scope: contexts.Scope) -> None:
        self.scope = scope
        self._token: object | None = None
        self._attached: Any = None
        self._stale = False

    def attach(self) -> None:
        if self._token is None:
            self._token, self._attached = contexts.attach_scope(self.scope)

    def detach(self) -> None:
        token, self._token = self._token, None
        if token is not None and not contexts.detach_scope(token, self._attached):
            self._stale = True

    def forget(self) -> None:
        """Drop the attachment without resetting it: the caller restored the Context itself
        (e.g. by resetting a token taken before the request), so a late reset would only
        bring back a stale Context."""
        self._token = self._attached = None

    def close(self) -> None:
        """Detach; close the scope only if a Context may still show it (threads and tasks the
        request started keep reading it after a clean end)."""
        self.detach()
        if self._stale:
            self.scope.close()


def enter_request(
    info: RequestInfo,
    request: Any,
    options: RequestOptions,
    identify: Identify | None = None,
) -> RequestContext | None:
    """Create and attach the request's PostHog context; None when ``request_filter`` says no.

    ``identify`` (optional) returns ``(distinct_id, tags)`` of the authenticated user; it is
    called only when the request itself carries no distinct id. Never raises: on an internal
    failure the request runs in a plain context.
    """
    if options.request_filter is not None:
        try:
            if not options.request_filter(request):
                return None
        except Exception:
            _logger.warning("posthog-otel request_filter raised; request is tracked", exc_info=True)
    scope = contexts.Scope(
        capture_exceptions=False, client=options.client, parent=contexts.current_scope()
    )
    request_context = RequestContext(scope)
    request_context.attach()
    try:
        ids, inbound_tags = _inbound_state(info.headers)
        if not (ids or inbound_tags):
            # nothing came in: the request's scope keeps what it sees now
            state = scope.resolve()
            ids, inbound_tags = state.ids, state.tags
        if ids:
            scope.update_ids(ids)
        if inbound_tags:
            scope.update_tags(inbound_tags)
        tags = _request_tags(info, options)
        if identify is not None and scope.distinct_id is None:
            _identify(scope, tags, identify)
        if options.extra_tags is not None:
            try:
                tags.update(options.extra_tags(request) or {})
            except Exception:
                _logger.warning("posthog-otel extra_tags raised", exc_info=True)
        if options.tag_map is not None:
            try:
                tags = options.tag_map(tags)
            except Exception:
                _logger.warning("posthog-otel tag_map raised", exc_info=True)
        scope.update_tags(tags)
        contexts.notify_changed(scope)
    except Exception:
        _logger.debug("posthog-otel could not read the request", exc_info=True)
    return request_context


def _identify(scope: contexts.Scope, tags: dict[str, Any], identify: Identify) -> None:
    try:
        found = identify()
    except Exception:
        _logger.warning("posthog-otel could not read the request's user", exc_info=True)
        return
    if not found:
        return
    distinct_id, user_tags = found
    if distinct_id:
        scope.set_distinct_id(distinct_id)
    if user_tags:
        tags.update(user_tags)


def capture_request_exception(
    exc: BaseException, options: RequestOptions, context: RequestContext | None = None
) -> None:
    """Capture an exception the framework would turn into a 500 (once; never raises).

    With ``context``, its scope is made current for the capture when it is not (a hook that
    runs after the framework or another instrumentation replaced the Context).
    """
    if not options.capture_exceptions or not isinstance(exc, Exception):
        return
    token = attached = None
    try:
        from posthog_otel import global_client

        if context is not None and contexts.current_scope() is not context.scope:
            token, attached = contexts.attach_scope(context.scope)
        client = options.client or global_client.get_client()
        client.capture_exception(exc, handled=False)
    except Exception:
        _logger.debug("posthog-otel could not capture a request exception", exc_info=True)
    finally:
        if token is not None:
            contexts.detach_scope(token, attached)


def exit_request(request_context: RequestContext | None) -> None:
    if request_context is not None:
        request_context.close()
