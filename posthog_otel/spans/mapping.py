"""Spans to PostHog events: the single place the rules live.

(Over 450 lines on purpose: span, exception and AI events are decided in one pass over a span,
with identity inheritance across an export; what is only about GenAI attributes lives in
:mod:`.genai` and :mod:`.genai_content`.)

Used by :class:`~posthog_otel.spans.processor.PosthogSpanProcessor` (in-process, with the scope's
state at span end), :class:`~posthog_otel.spans.exporter.PosthogSpanExporter` (any processor,
identity read from attributes) and the OTLP bridge (spans from other processes and languages).

Usage::

    mapper = SpanMapper(MappingOptions(capture_spans="roots"))
    for event in mapper.events_for(readable_span):
        client.capture_raw(event.name, distinct_id=event.distinct_id,
                           properties=event.properties, timestamp=event.timestamp)

Rules:

* A span becomes an event when it is marked with ``posthog.event`` (any mode), or with
  ``capture_spans="all"``, or with ``"roots"`` (default) when it is a local root ``SERVER`` or
  ``CONSUMER`` span whose person or session is known. The event name is the ``posthog.event``
  value, else the span name; its timestamp is the span's start.
* Each ``exception`` span event becomes a ``$exception`` event with ``$exception_list``, once
  per exception per trace (an exception recorded on several nested spans is sent for the
  innermost), unless it was already captured live (attribute ``posthog.exception_captured``).
* Properties: the scope's tags, the span's attributes (without our ``posthog.*`` ones, and
  without GenAI content, :func:`posthog_otel.spans.genai.is_genai_content`), ids,
  kind, status, duration, ``service.name``, and HTTP semantic conventions (old and new names)
  as PostHog's ``$current_url``, ``$request_method``, ``$request_path``, ``$ip``,
  ``$user_agent``, plus ``http_status_code`` and ``http_route``.

Spans exported together share identity within a trace: an exception on a child span whose own
attributes name no person (Node.js users set ``posthog.distinct_id`` on the root ``SERVER``
span only) takes the missing identity fields and tags from its ancestors in the same export,
nearest first, then from the trace's local root span (:class:`ExportFamily`). Spans of one
trace that arrive in different exports are not joined: put the Collector's ``groupbytrace``
processor in front of the receiver for that.

Receivers that decode spans themselves (the OTLP bridge) ask :meth:`SpanMapper.may_yield`
first, from fields that are cheap to read, and decode a span's attributes only when it may
produce events; log records reuse :meth:`SpanMapper.exception_list_once` and
:func:`context_properties` so spans and logs follow the same rules.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind, StatusCode

from .. import _identity
from ..errors import FrameOptions, exception_list_from_stacktrace, span_exception_handled
from . import genai, genai_logs
from ._sdk import attribute_store, has_events

__all__ = [
    "CAPTURE_MODES",
    "EVENT_ATTRIBUTE",
    "EXCEPTION_CAPTURED_ATTRIBUTE",
    "ExportFamily",
    "Identity",
    "MappingOptions",
    "SpanEvent",
    "SpanMapper",
    "context_properties",
    "identity_from_attributes",
    "property_value",
    "span_attributes_for",
]

CAPTURE_MODES = ("roots", "all", "none")
EVENT_ATTRIBUTE = _identity.EVENT_ATTRIBUTE
EXCEPTION_CAPTURED_ATTRIBUTE = "posthog.exception_captured"

TAG_PREFIX = _identity.TAG_PREFIX
HIDDEN_ATTRIBUTES = _identity.NATIVE_NAMES  # ingestion aliases, never event properties
_DISTINCT = _identity.DISTINCT_ID.name
_SESSION = _identity.SESSION_ID.name
_ROOT_KINDS = frozenset({SpanKind.SERVER, SpanKind.CONSUMER})
_GENAI = genai.GENAI_PREFIXES
_SKIPPED_PREFIXES = (_identity.PREFIX, *_GENAI)  # checked in one C-level call per attribute
_ATTRIBUTE_SCALARS = (str, bool, int, float)
# Enum .name is a descriptor call; these run for every span event
_KIND_NAMES = {kind: kind.name.lower() for kind in SpanKind}
_STATUS_NAMES = {code: code.name.lower() for code in StatusCode}


class Identity(NamedTuple):
    """Who and what a span belongs to: from the live scope, or read back from attributes.

    ``ids`` maps identity field names (:data:`posthog_otel._identity.FIELDS`) to values.
    """

    ids: Mapping[str, str]
    tags: Mapping[str, Any]

    @property
    def distinct_id(self) -> str | None:
        return self.ids.get(_DISTINCT)

    @property
    def session_id(self) -> str | None:
        return self.ids.get(_SESSION)


class SpanEvent(NamedTuple):
    """One PostHog event derived from a span, ready for ``Client.capture_raw``. ``ai`` is
    what an AI event was made of (for :meth:`SpanMapper.with_records`); None otherwise."""

    name: str
    distinct_id: str | None
    properties: dict[str, Any]
    timestamp: float
    ai: genai.AiSpan | None = None


@dataclass(frozen=True)
class MappingOptions:
    """Which spans become events, and how exception frames are judged."""

    capture_spans: str = "roots"
    capture_exceptions: bool = True
    frame_options: FrameOptions = field(default_factory=FrameOptions)
    ai: genai.AiOptions = field(default_factory=genai.AiOptions)  # GenAI spans: AI events

    def __post_init__(self) -> None:
        if self.capture_spans not in CAPTURE_MODES:
            raise ValueError(
                f"capture_spans must be one of {CAPTURE_MODES}, got {self.capture_spans!r}"
            )


# -- scope state <-> span attributes ------------------------------------------------------


def _attribute_value(value: Any) -> Any:
    """A valid OTel attribute value: scalars and homogeneous scalar lists as is, else JSON."""
    if isinstance(value, _ATTRIBUTE_SCALARS):
        return value
    if isinstance(value, list | tuple) and value:
        first = type(value[0])
        if first in (str, bool, int, float) and all(type(v) is first for v in value):
            return tuple(value)
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)


def property_value(value: Any) -> Any:
    """An attribute value as a property: sequences become lists, JSON objects/arrays decode."""
    kind = type(value)
    if kind is tuple:
        return list(value)
    if kind is str and len(value) > 1 and value[0] in "[{" and value[-1] in "]}":
        try:
            return json.loads(value)
        except (ValueError, RecursionError):  # not JSON, or nested too deep: the text
            return value
    return value


def span_attributes_for(
    ids: Mapping[str, str], tags: Mapping[str, Any], native_aliases: bool = True
) -> dict[str, Any]:
    """The attributes that stamp a scope's identity values and tags onto a span."""
    attributes: dict[str, Any] = _identity.stamp_attributes(ids, native_aliases)
    for key, value in tags.items():
        attributes[TAG_PREFIX + str(key)] = _attribute_value(value)
    return attributes


def identity_from_attributes(attributes: Mapping[str, Any] | None) -> Identity:
    """Read identity values and tags back from span or log attributes."""
    if not attributes:
        return Identity({}, {})
    tags = {
        key[len(TAG_PREFIX) :]: property_value(value)
        for key, value in attributes.items()
        if key.startswith(TAG_PREFIX)
    }
    return Identity(_identity.read_attributes(attributes), tags)


# -- HTTP semantic conventions ------------------------------------------------------------

# every attribute http_properties() reads
_HTTP_KEYS = frozenset(
    {
        "http.request.method",
        "http.method",
        "url.full",
        "http.url",
        "http.target",
        "url.path",
        "server.address",
        "http.host",
        "net.host.name",
        "url.scheme",
        "http.scheme",
        "server.port",
        "net.host.port",
        "url.query",
        "client.address",
        "http.client_ip",
        "net.peer.ip",
        "user_agent.original",
        "http.user_agent",
        "http.response.status_code",
        "http.status_code",
        "http.route",
    }
)


def http_properties(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """PostHog's request properties from HTTP semantic conventions (old and new names)."""
    props: dict[str, Any] = {}
    if _HTTP_KEYS.isdisjoint(attributes):  # most spans: one C-level pass instead of ~17 gets
        return props
    get = attributes.get
    method = get("http.request.method") or get("http.method")
    if method:
        props["$request_method"] = method
    url = get("url.full") or get("http.url")
    target = get("http.target")
    path = get("url.path")
    if not url:
        host = get("server.address") or get("http.host") or get("net.host.name")
        if host and (path or target):
            scheme = get("url.scheme") or get("http.scheme") or "http"
            port = get("server.port") or get("net.host.port")
            if port and ":" not in str(host) and str(port) not in ("80", "443"):
                host = f"{host}:{port}"
            query = get("url.query")
            rest = target or (f"{path}?{query}" if query else path)
            url = f"{scheme}://{host}{rest}"
    if url:
        props["$current_url"] = url
    if not path:
        if target:
            path = str(target).split("?", 1)[0]
        elif url:
            try:
                path = urlsplit(str(url)).path or None
            except ValueError:
                path = None
    if path:
        props["$request_path"] = path
    ip = get("client.address") or get("http.client_ip") or get("net.peer.ip")
    if ip:
        props["$ip"] = ip
    agent = get("user_agent.original") or get("http.user_agent")
    if agent:
        props["$user_agent"] = agent
    status = get("http.response.status_code") or get("http.status_code")
    if status is not None:
        props["http_status_code"] = status
    route = get("http.route")
    if route:
        props["http_route"] = route
    return props


def context_properties(
    identity: Identity, trace_id: int, span_id: int, service: Any = None
) -> dict[str, Any]:
    """Tags, ``$context_tags``, ``$trace_id``/``$span_id`` (when non-zero), session, window and
    ``service.name``: what every event derived from a span or a log record carries."""
    tags = identity.tags
    props: dict[str, Any] = dict(tags)
    if tags:
        props["$context_tags"] = list(tags)
    if trace_id:
        props["$trace_id"] = format(trace_id, "032x")
    if span_id:
        props["$span_id"] = format(span_id, "016x")
    _identity.event_properties(identity.ids, props)
    if service:
        props["service.name"] = service
    return props


# -- spans exported together --------------------------------------------------------------

_MAX_ANCESTRY = 64  # parent links followed per span: bounds hostile or cyclic input


class ExportFamily:
    """The spans of one export, indexed so a span can inherit identity from its relatives.

    Usage::

        family = ExportFamily(spans)
        identity = family.complete(span, identity_from_attributes(span.attributes))
    """

    def __init__(self, spans: Iterable[Any]) -> None:
        self._by_id: dict[tuple[int, int], Any] = {}
        self._roots: dict[int, Any] = {}
        for span in spans:
            context = span.context
            if context is None:
                continue
            self._by_id[(context.trace_id, context.span_id)] = span
            parent = span.parent
            if parent is None or parent.is_remote:
                self._roots.setdefault(context.trace_id, span)

    def get(self, trace_id: int, span_id: int) -> Any:
        """The span of this export with these ids, or None."""
        return self._by_id.get((trace_id, span_id))

    def complete(self, span: Any, identity: Identity) -> Identity:
        """``identity`` with the fields and tags it lacks taken from the span's ancestors in
        this export (nearest first), then from its trace's local root span."""
        context = span.context
        parent = span.parent
        if context is None or parent is None or parent.is_remote:
            return identity  # a local root has nobody to inherit from
        ids, tags = dict(identity.ids), dict(identity.tags)
        seen = {context.span_id}
        relatives: list[Any] = []
        current = parent
        while current is not None and not current.is_remote and len(seen) <= _MAX_ANCESTRY:
            relative = self._by_id.get((context.trace_id, current.span_id))
            if relative is None or current.span_id in seen:
                break
            seen.add(current.span_id)
            relatives.append(relative)
            current = relative.parent
        root = self._roots.get(context.trace_id)
        if root is not None and root.context.span_id not in seen:
            relatives.append(root)
        for relative in relatives:
            inherited = identity_from_attributes(attribute_store(relative))
            for name, value in inherited.ids.items():
                ids.setdefault(name, value)
            for key, value in inherited.tags.items():
                tags.setdefault(key, value)
        return Identity(ids, tags)


# -- the mapper ---------------------------------------------------------------------------


class _SeenExceptions:
    """A bounded, thread-safe set of exception keys already turned into events."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._keys: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def first_time(self, key: tuple[Any, ...]) -> bool:
        with self._lock:
            if key in self._keys:
                self._keys.move_to_end(key)
                return False
            self._keys[key] = None
            if len(self._keys) > self._capacity:
                self._keys.popitem(last=False)
            return True


def _raise_site(stacktrace: str | None) -> str:
    """The innermost ``File ..., line N`` of a traceback: equal on every span it escaped."""
    if not stacktrace:
        return ""
    marker = stacktrace.rfind('  File "')
    if marker < 0:
        return stacktrace[:200]
    end = stacktrace.find("\n", marker)
    return stacktrace[marker : end if end >= 0 else None]


class SpanMapper:
    """Turns finished spans into :class:`SpanEvent` s following the module's rules."""

    def __init__(self, options: MappingOptions | None = None) -> None:
        self.options = options or MappingOptions()
        self._seen = _SeenExceptions()

    def wants_span_event(self, span: Any, identity: Identity) -> bool:
        """Does this span itself (not its exceptions) become an event?"""
        attributes = attribute_store(span)
        if attributes.get(EVENT_ATTRIBUTE):
            return True
        mode = self.options.capture_spans
        if mode == "all":
            return True
        if mode == "none" or span.kind not in _ROOT_KINDS:
            return False
        parent = span.parent
        if parent is not None and not parent.is_remote:
            return False
        return identity.distinct_id is not None or identity.session_id is not None  # IDENTIFYING

    def may_yield(
        self,
        kind: SpanKind,
        has_local_parent: bool,
        has_exception_event: bool,
        maybe_marked: bool,
    ) -> bool:
        """Could :meth:`events_for` return events for a span like this? False only when it
        surely returns none. For receivers that decode attributes lazily: ``maybe_marked``
        is False only when the span surely has no ``posthog.event`` attribute."""
        if maybe_marked:
            return True
        mode = self.options.capture_spans
        if mode == "all" or (has_exception_event and self.options.capture_exceptions):
            return True
        return mode == "roots" and kind in _ROOT_KINDS and not has_local_parent

    def events_for(
        self, span: Any, identity: Identity | None = None, family: ExportFamily | None = None
    ) -> list[SpanEvent]:
        """Events for one finished span. ``identity`` (the live scope at span end) wins over
        what the attributes say; without it, the attributes are completed from the span's
        ``family`` (the other spans of its export), when given."""
        attributes = attribute_store(span)
        if identity is None:
            identity = identity_from_attributes(attributes)
            if family is not None:
                identity = family.complete(span, identity)
        events: list[SpanEvent] = []
        if self.options.ai.enabled and genai.is_ai_span(attributes):
            events.append(self._ai_event(span, attributes, identity, family))
        elif self.wants_span_event(span, identity):
            events.append(self._span_event(span, attributes, identity))
        if self.options.capture_exceptions and has_events(span):
            events.extend(self._exception_events(span, attributes, identity))
        return events

    def _common(
        self, span: Any, attributes: Mapping[str, Any], identity: Identity
    ) -> dict[str, Any]:
        context = span.context
        resource = getattr(span, "resource", None)
        props = context_properties(
            identity,
            context.trace_id if context is not None else 0,
            context.span_id if context is not None else 0,
            resource.attributes.get("service.name") if resource is not None else None,
        )
        props.update(http_properties(attributes))
        return props

    def _span_event(
        self, span: Any, attributes: Mapping[str, Any], identity: Identity
    ) -> SpanEvent:
        props = self._common(span, attributes, identity)
        for key, value in attributes.items():
            if key in props or key in HIDDEN_ATTRIBUTES:
                continue
            if key.startswith(_SKIPPED_PREFIXES) and (
                not key.startswith(_GENAI) or genai.is_genai_content(key)
            ):
                continue  # ours, or GenAI content: only AI events carry it, as $ai_*
            kind = type(value)
            if kind is tuple or (kind is str and value[:1] in "[{"):  # the rare slow cases
                value = property_value(value)
            props[key] = value
        parent = span.parent
        if parent is not None:
            props["$parent_span_id"] = format(parent.span_id, "016x")
        props["span_name"] = span.name
        props["span_kind"] = _KIND_NAMES[span.kind]
        status = span.status
        props["status"] = _STATUS_NAMES[status.status_code]
        if status.status_code is StatusCode.ERROR and status.description:
            props["status_message"] = status.description
        start, end = span.start_time, span.end_time
        if start is not None and end is not None:
            props["duration_ms"] = (end - start) / 1e6
        name = attributes.get(EVENT_ATTRIBUTE) or span.name
        return SpanEvent(str(name), identity.distinct_id, props, (start or 0) / 1e9)

    def _ai_event(
        self,
        span: Any,
        attributes: Mapping[str, Any],
        identity: Identity,
        family: ExportFamily | None,
    ) -> SpanEvent:
        """A GenAI span's LLM analytics event (:mod:`posthog_otel.spans.genai`)."""
        context = span.context
        trace_id, span_id = (context.trace_id, context.span_id) if context is not None else (0, 0)
        parent_id = (
            _ai_parent_id(span, attributes, family)
            if family is not None or genai.AI_PARENT_ATTRIBUTE in attributes
            else None  # what _ai_parent_id finds with neither
        )
        status = span.status
        failed = status.status_code is StatusCode.ERROR
        span_events: Any = span.events if has_events(span) else ()
        if context is not None:  # content sent as log records (genai_logs)
            records = genai_logs.CONTENT.claim(trace_id, span_id)
            if records:
                span_events = (*span_events, *records)
        start = span.start_time
        described = genai.AiSpan(
            span.name,
            attributes,
            span_events,
            trace_id,
            span_id,
            parent_id,
            start,
            span.end_time,
            failed,
            status.description if failed else None,
        )
        props = self._common(span, attributes, identity)
        # the ids as _common wrote them (it skips zero ids, which tags may then hold)
        ids = (props["$trace_id"], props["$span_id"]) if trace_id and span_id else None
        name, ai_props = genai.ai_event(described, self.options.ai, ids, into=props)
        if ai_props is not props:
            props.update(ai_props)
        return SpanEvent(name, identity.distinct_id, props, (start or 0) / 1e9, described)

    def with_records(self, event: SpanEvent, records: Sequence[Any]) -> SpanEvent:
        """An AI event made again with GenAI content ``records`` that arrived after it was
        made (:mod:`genai_logs`), as if they had been claimed then: its ``$ai_*`` properties
        from the span and all its records, every other property (person, session, tags)
        and the distinct id unchanged. Without records (or for another event): ``event``."""
        described = event.ai
        if described is None or not records:
            return event
        ai = self.options.ai
        before = genai.ai_properties(described, event.name, ai)
        described = described._replace(events=(*described.events, *records))
        props = {k: v for k, v in event.properties.items() if k not in before}
        props.update(genai.ai_properties(described, event.name, ai))
        return event._replace(properties=props, ai=described)

    def _exception_events(
        self, span: Any, attributes: Mapping[str, Any], identity: Identity
    ) -> Iterable[SpanEvent]:
        trace_id = span.context.trace_id if span.context is not None else 0
        failed = span.status.status_code is StatusCode.ERROR
        for event in span.events:
            if event.name != "exception":
                continue
            data = event.attributes or {}
            handled = span_exception_handled(data.get("exception.escaped"), span_failed=failed)
            entries = self.exception_list_once(trace_id, data, handled=handled)
            if not entries:
                continue
            props = self._common(span, attributes, identity)
            props["$exception_list"] = entries
            props["$exception_level"] = "error"
            yield SpanEvent("$exception", identity.distinct_id, props, event.timestamp / 1e9)

    def exception_list_once(
        self, trace_id: int, data: Mapping[str, Any], *, handled: bool
    ) -> list[dict[str, Any]] | None:
        """``$exception_list`` for OTel ``exception.*`` attributes (a span's ``exception``
        event, or a log record), or None when there is nothing to report: already captured
        live (``posthog.exception_captured``), already reported for this trace (exceptions
        with a ``trace_id`` of 0 are never de-duplicated), or no exception described."""
        if data.get(EXCEPTION_CAPTURED_ATTRIBUTE):
            return None
        stacktrace = data.get("exception.stacktrace")
        exc_type = data.get("exception.type")
        message = data.get("exception.message")
        if trace_id and not self._seen.first_time(
            (trace_id, exc_type, message, _raise_site(stacktrace))
        ):
            return None
        entries = exception_list_from_stacktrace(
            None if stacktrace is None else str(stacktrace),
            exc_type=None if exc_type is None else str(exc_type),
            message=None if message is None else str(message),
            handled=handled,
            options=self.options.frame_options,
        )
        return entries or None


def _ai_parent_id(
    span: Any, attributes: Mapping[str, Any], family: ExportFamily | None
) -> str | None:
    """The nearest AI ancestor's span id: stamped by the processor, else found among the
    spans exported with this one."""
    stamped = attributes.get(genai.AI_PARENT_ATTRIBUTE)
    if stamped:
        return str(stamped)
    context = span.context
    parent = span.parent
    if family is None or context is None:
        return None
    for _ in range(_MAX_ANCESTRY):
        if parent is None or parent.is_remote:
            return None
        relative = family.get(context.trace_id, parent.span_id)
        if relative is None:
            return None
        if genai.is_ai_span(attribute_store(relative)):
            return format(parent.span_id, "016x")
        parent = relative.parent
    return None
