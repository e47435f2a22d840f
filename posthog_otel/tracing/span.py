"""posthog-python's tracing API (``start_span``, ``get_active_span``) on OpenTelemetry spans.

:class:`TracingSpan` is an ``opentelemetry.trace.Span`` (wrapping the SDK's span) that also
speaks posthog-python 7.9x's span handle: ``set_status("ok" | "error", message)``,
``add_event``/``end`` taking a ``datetime`` or epoch seconds, ``traceparent()``,
``tracestate()``, methods that chain and never raise. Entering it (``with``) makes it the
current OpenTelemetry span, so every instrumentation's spans started inside nest under it, and
ends it on exit, recording an ``Exception`` (not ``GeneratorExit``/``CancelledError``) as an
``exception`` event with status error unless the status was set to ``ok``.

Usage (through :meth:`posthog_otel.Client.start_span` or ``posthog_otel.start_span``)::

    with start_span(tracer, "POST /checkout", kind="server",
                    parent=request.headers.get("traceparent")) as span:
        span.set_attribute("plan", "pro")
        headers = {"traceparent": span.traceparent()}

``start_span(None, ...)`` (tracing off) returns an inert handle that still forwards an inbound
``traceparent``.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util import types

__all__ = ["TracingSpan", "get_active_span", "start_span"]

_logger = logging.getLogger("posthog.otel")
_HANDLE_KEY = otel_context.create_key("posthog-otel-tracing-span")
_KINDS = {
    "internal": SpanKind.INTERNAL,
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
}
_W3C = TraceContextTextMapPropagator()
_NS_THRESHOLD = 10**14  # an int this large is nanoseconds (OpenTelemetry), else seconds


def _to_ns(value: Any) -> int | None:
    """Epoch nanoseconds from a ``datetime``, epoch seconds, or OpenTelemetry's int ns."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.astimezone()
        return int(value.timestamp() * 1e9)
    if isinstance(value, int):
        return value if value >= _NS_THRESHOLD else value * 1_000_000_000
    if isinstance(value, float):
        return int(value * 1e9)
    return None


def _attribute_value(value: Any) -> Any:
    """A value OpenTelemetry accepts: primitives kept, sequences of one primitive type kept,
    mappings as JSON text, anything else as ``str``."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = list(value)
        kinds = {type(item) for item in items}
        if len(kinds) <= 1 and all(isinstance(i, str | bool | int | float) for i in items):
            return items
        return [str(item) for item in items]
    if isinstance(value, Mapping):
        try:
            return json.dumps(value, default=str)
        except Exception:
            return str(value)
    return str(value)


def _attributes(given: Any) -> dict[str, Any]:
    if not isinstance(given, Mapping):
        return {}
    return {
        str(key): _attribute_value(value)
        for key, value in given.items()
        if key is not None and str(key) and value is not None
    }


class TracingSpan(trace.Span):
    """See the module docstring. Every method is safe on any handle, and never raises.

    The setters return the handle (posthog-python's handles chain); OpenTelemetry's return
    None, which no caller of the OpenTelemetry API uses."""

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._tokens: list[object] = []
        self._status_ok = False

    @property
    def span(self) -> trace.Span:
        """The OpenTelemetry span this handle drives."""
        return self._span

    # -- OpenTelemetry's Span API (and posthog-python's, where they share a name) -----------

    def get_span_context(self) -> trace.SpanContext:
        return self._span.get_span_context()

    def is_recording(self) -> bool:
        return self._span.is_recording()

    def set_attribute(self, key: str, value: types.AttributeValue | Any) -> TracingSpan:  # type: ignore[override]
        try:
            if key is not None and str(key) and value is not None:
                self._span.set_attribute(str(key), _attribute_value(value))
        except Exception:
            _logger.debug("posthog-otel span.set_attribute failed", exc_info=True)
        return self

    def set_attributes(self, attributes: Mapping[str, Any]) -> TracingSpan:  # type: ignore[override]
        try:
            self._span.set_attributes(_attributes(attributes))
        except Exception:
            _logger.debug("posthog-otel span.set_attributes failed", exc_info=True)
        return self

    def add_event(  # type: ignore[override]
        self,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        timestamp: Any = None,
    ) -> TracingSpan:
        try:
            self._span.add_event(str(name), _attributes(attributes), _to_ns(timestamp))
        except Exception:
            _logger.debug("posthog-otel span.add_event failed", exc_info=True)
        return self

    def set_status(self, code: Any, message: str | None = None) -> TracingSpan:  # type: ignore[override]
        """``"ok"``/``"error"`` (posthog-python) or a ``Status``/``StatusCode``."""
        try:
            if isinstance(code, str):
                mapped = {"ok": StatusCode.OK, "error": StatusCode.ERROR}.get(code)
                if mapped is None:
                    return self
                code = mapped
            if code is StatusCode.OK or (
                isinstance(code, Status) and code.status_code is StatusCode.OK
            ):
                # final, as on the SDK span: a later error status does not replace it
                self._status_ok = self._span.is_recording() or self._status_ok
            if isinstance(code, Status):
                self._span.set_status(code)
            else:
                text = None if message is None or code is not StatusCode.ERROR else str(message)
                self._span.set_status(code, text)
        except Exception:
            _logger.debug("posthog-otel span.set_status failed", exc_info=True)
        return self

    def record_exception(  # type: ignore[override]
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> TracingSpan:
        """Record an ``exception`` event and set status error (as posthog-python does)."""
        self._record(exception, attributes, timestamp, escaped, keep_ok=False)
        return self

    def _record(
        self,
        exception: BaseException,
        attributes: types.Attributes,
        timestamp: int | None,
        escaped: bool,
        keep_ok: bool,
    ) -> None:
        try:
            if not self._span.is_recording():
                return
            self._span.record_exception(exception, attributes, timestamp, escaped)
            if not (keep_ok and self._status_ok):
                self._span.set_status(StatusCode.ERROR, _message(exception))
        except Exception:
            _logger.debug("posthog-otel span.record_exception failed", exc_info=True)

    def update_name(self, name: str) -> TracingSpan:  # type: ignore[override]
        try:
            self._span.update_name(str(name))
        except Exception:
            _logger.debug("posthog-otel span.update_name failed", exc_info=True)
        return self

    def end(self, end_time: Any = None) -> None:
        try:
            self._span.end(_to_ns(end_time))
        except Exception:
            _logger.debug("posthog-otel span.end failed", exc_info=True)

    # -- posthog-python's handle ----------------------------------------------------------

    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` header value to propagate, or None."""
        return _header(self._span, "traceparent")

    def tracestate(self) -> str | None:
        """The W3C ``tracestate`` header value to propagate, or None."""
        return _header(self._span, "tracestate")

    def __enter__(self) -> TracingSpan:
        try:
            ctx = trace.set_span_in_context(self._span)
            self._tokens.append(otel_context.attach(otel_context.set_value(_HANDLE_KEY, self, ctx)))
        except Exception:
            _logger.debug("posthog-otel could not enter a span", exc_info=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Detached before it ends, as OpenTelemetry's use_span does.
        if self._tokens:
            try:
                otel_context.detach(self._tokens.pop())  # type: ignore[arg-type]
            except Exception:
                _logger.debug("posthog-otel could not leave a span", exc_info=True)
        if isinstance(exc, Exception):
            self._record(exc, None, None, True, keep_ok=True)
        self.end()

    def __repr__(self) -> str:
        return f"TracingSpan({self._span!r})"


def _message(exception: BaseException) -> str:
    try:
        return str(exception)
    except Exception:
        return type(exception).__name__


def _header(span: trace.Span, name: str) -> str | None:
    try:
        if not span.get_span_context().is_valid:
            return None
        carrier: dict[str, str] = {}
        _W3C.inject(carrier, trace.set_span_in_context(span, otel_context.Context()))
        return carrier.get(name) or None
    except Exception:
        return None


def _parent_context(parent: Any, tracestate: Any) -> otel_context.Context | None:
    """The context to start under: a handle, an OpenTelemetry span, a traceparent, or None."""
    if isinstance(parent, TracingSpan):
        return trace.set_span_in_context(parent.span)
    if isinstance(parent, trace.Span):
        return trace.set_span_in_context(parent)
    if isinstance(parent, str) and parent.strip():
        carrier = {"traceparent": parent.strip()}
        if isinstance(tracestate, str) and tracestate.strip():
            carrier["tracestate"] = tracestate.strip()
        # Extracted into the current context: the PostHog scope (identity) lives there too.
        base = trace.set_span_in_context(trace.INVALID_SPAN)
        extracted = _W3C.extract(carrier, context=base)
        if trace.get_current_span(extracted).get_span_context().is_valid:
            return extracted
        _logger.debug("posthog-otel: invalid traceparent %r; starting a new trace", parent)
        return base
    return None


def start_span(
    tracer: trace.Tracer | None,
    name: str,
    *,
    kind: Any = None,
    attributes: Mapping[str, Any] | None = None,
    parent: Any = None,
    tracestate: Any = None,
    start_time: Any = None,
) -> TracingSpan:
    """A handle for a new span (see the module docstring); never raises."""
    try:
        context = _parent_context(parent, tracestate)
        if tracer is None:  # tracing off: forward the inbound trace, record nothing
            carrier = trace.get_current_span(context)
            return TracingSpan(NonRecordingSpan(carrier.get_span_context()))
        span_kind = kind if isinstance(kind, SpanKind) else _KINDS.get(str(kind).lower())
        span = tracer.start_span(
            str(name),
            context=context,
            kind=span_kind or SpanKind.INTERNAL,
            attributes=_attributes(attributes),
            start_time=_to_ns(start_time),
        )
        return TracingSpan(span)
    except Exception:
        _logger.debug("posthog-otel start_span failed; returning an inert span", exc_info=True)
        return TracingSpan(trace.INVALID_SPAN)


def get_active_span() -> TracingSpan | None:
    """The current OpenTelemetry span as a handle (the entered handle itself), or None."""
    try:
        current = trace.get_current_span()
        if not current.get_span_context().is_valid:
            return None
        handle = otel_context.get_value(_HANDLE_KEY)
        if isinstance(handle, TracingSpan) and handle.span is current:
            return handle
        return TracingSpan(current)
    except Exception:
        return None

