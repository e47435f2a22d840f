"""Live capture of exceptions recorded on spans (the ``record_exception`` hook).

When instrumented, ``Span.record_exception`` of the OpenTelemetry SDK is wrapped: the live
exception object gives full frames (with context lines and ``in_app``) instead of parsed text,
the exception is captured once as ``$exception`` with the span's identity, session, tags,
``$trace_id`` and ``$span_id``, and it is marked captured, so contexts, framework middleware and
the other spans it escapes through do not send it again. The span event gets the attribute
``posthog.exception_captured = true`` so exporters and the OTLP bridge skip it. A disabled
client (no API key: a service that only stamps spans for a Collector) marks nothing.

    hook_record_exception(lambda: client)
    ...
    unhook_record_exception()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import wrapt

from .._identity import event_properties
from ..errors import is_captured
from .mapping import EXCEPTION_CAPTURED_ATTRIBUTE, identity_from_attributes

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["hook_record_exception", "is_hooked", "unhook_record_exception"]

_logger = logging.getLogger("posthog.otel")
_client_getter: Callable[[], Client] | None = None


def is_hooked() -> bool:
    from opentelemetry.sdk.trace import Span

    return isinstance(vars(Span).get("record_exception"), wrapt.FunctionWrapper)


def hook_record_exception(client_getter: Callable[[], Client]) -> None:
    """Wrap ``Span.record_exception`` (idempotent); ``client_getter`` picks the client."""
    global _client_getter
    _client_getter = client_getter
    if not is_hooked():
        wrapt.wrap_function_wrapper(
            "opentelemetry.sdk.trace", "Span.record_exception", _record_exception
        )


def unhook_record_exception() -> None:
    global _client_getter
    from opentelemetry.sdk.trace import Span

    _client_getter = None
    if is_hooked():
        Span.record_exception = vars(Span)["record_exception"].__wrapped__  # type: ignore[method-assign]


def _record_exception(
    wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    try:
        args, kwargs = _capture(instance, args, kwargs)
    except Exception:
        _logger.debug("posthog-otel record_exception hook failed", exc_info=True)
    return wrapped(*args, **kwargs)


def _capture(
    span: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    exception = args[0] if args else kwargs.get("exception")
    getter = _client_getter
    if not isinstance(exception, BaseException) or getter is None or not span.is_recording():
        return args, kwargs
    if not isinstance(exception, Exception):  # KeyboardInterrupt, SystemExit, ...
        return args, kwargs
    if not is_captured(exception):
        client = getter()
        # A client that sends nothing (no API key, disabled) captures nothing: leave the span
        # event unmarked so an exporter further on (the OTLP bridge) still reports it.
        if client.disabled or not client.enable_exception_autocapture:
            return args, kwargs
        escaped = bool(kwargs.get("escaped", args[3] if len(args) > 3 else False))
        client.capture_exception(
            exception,
            distinct_id=_distinct_id(span.attributes),
            properties=_span_properties(span),
            handled=not escaped,
        )
    # Mark the span event so exporters and the bridge do not build a second $exception.
    attributes = kwargs.get("attributes", args[1] if len(args) > 1 else None)
    marked = dict(attributes or {})
    marked[EXCEPTION_CAPTURED_ATTRIBUTE] = True
    if len(args) > 1:
        args = (args[0], marked, *args[2:])
    else:
        kwargs = {**kwargs, "attributes": marked}
    return args, kwargs


def _distinct_id(attributes: Mapping[str, Any] | None) -> str | None:
    return identity_from_attributes(attributes).distinct_id


def _span_properties(span: Any) -> dict[str, Any]:
    identity = identity_from_attributes(span.attributes)
    props: dict[str, Any] = dict(identity.tags)
    context = span.get_span_context()
    props["$trace_id"] = format(context.trace_id, "032x")
    props["$span_id"] = format(context.span_id, "016x")
    event_properties(identity.ids, props)
    return props
