"""PosthogSpanProcessor: stamps PostHog identity on spans and turns chosen spans into events.

``on_start`` stamps the scope of the span's parent context as attributes
(``posthog.distinct_id``, ``posthog.session_id``, ``posthog.window_id``, ``posthog.tag.<key>``,
and PostHog's own ``posthogDistinctId``/``sessionId`` unless ``native_attribute_aliases=False``)
in one ``set_attributes`` call, from a dict cached per scope state. Attributes the span already
has are never overwritten.

Late identity: ``identify_context``/``set_context_session``/``set_context_window_id``/``tag``
also stamp the current recording span, and a local root span's event uses the scope as it was
when the span ended — a user identified inside a view owns that request's event.

``on_end`` decides cheaply whether a span yields events (see :mod:`posthog_otel.spans.mapping`) and
hands those to a bounded background queue; mapping and capture happen off the request thread.

While a processor is active, ``Span.record_exception`` is hooked (see
:mod:`posthog_otel.spans.record_exception`): exceptions get full frames and are captured once.

Usage::

    provider = TracerProvider()
    provider.add_span_processor(PosthogSpanProcessor(capture_spans="roots"))
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from .. import _identity
from ..context import Scope, current_scope, observers, runtime
from ..delivery.queue import FEEDS_EVENTS, WorkQueue
from . import genai
from . import record_exception as span_exceptions
from ._sdk import (
    attribute_store,
    has_events,
    may_become_event,
    stamp_live_span,
    stamp_new_span,
)
from .exporter import PosthogSpanExporter
from .genai_nesting import AiAncestry
from .mapping import EVENT_ATTRIBUTE, Identity, span_attributes_for

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["PosthogSpanProcessor"]

_logger = logging.getLogger("posthog.otel")

_get_current = runtime.get_current
_ROOT_KINDS = frozenset({trace.SpanKind.SERVER, trace.SpanKind.CONSUMER})
# The span thread wakes for a batch of this many ended spans or after this many seconds,
# not once per span: a wake-up per request costs the request threads a GIL hand-off.
_WAKE_BATCH = 16
_WAKE_INTERVAL = 0.2
# attributes that make a span "identified" (an event in "roots" mode)
_IDENTITY_KEYS = tuple(key for field in _identity.IDENTIFYING for key in field.input_keys)
_MAX_OPEN = 100_000  # open candidate spans tracked; beyond it new ones use their attributes


def _stamp_ai_parent(span: Span, parent_context: otel_context.Context | None) -> None:
    """Name an AI span's AI parent (``posthog.ai.parent_id``) while both are in hand, so its
    event nests under the agent or step that made the call."""
    parent: Any = trace.get_current_span(parent_context)
    if not parent.is_recording() or not parent.get_span_context().is_valid:
        return
    parent_attributes = attribute_store(parent)
    if genai.is_ai_span(parent_attributes):
        span.set_attribute(
            genai.AI_PARENT_ATTRIBUTE, format(parent.get_span_context().span_id, "016x")
        )


def _is_local_root(span: Any) -> bool:
    """A SERVER/CONSUMER span without a parent in this process: its request's root."""
    parent = span.parent
    return (parent is None or parent.is_remote) and span.kind in _ROOT_KINDS


class PosthogSpanProcessor(SpanProcessor):
    """See the module docstring. ``client`` defaults to the process's default client."""

    def __init__(
        self,
        client: Client | None = None,
        *,
        capture_spans: str | None = None,
        capture_exceptions: bool | None = None,
        native_attribute_aliases: bool = True,
        max_queue_size: int = 2048,
        exporter: PosthogSpanExporter | None = None,
    ) -> None:
        self._exporter = exporter or PosthogSpanExporter(
            client, capture_spans=capture_spans, capture_exceptions=capture_exceptions
        )
        self._all = self._exporter.capture_spans == "all"
        # with capture_spans="none" an identified root span alone yields no event
        self._root_kinds = frozenset() if self._exporter.capture_spans == "none" else _ROOT_KINDS
        self._aliases = native_attribute_aliases
        self._cache_key = "span_attributes" if native_attribute_aliases else "span_attributes_plain"
        # span_id -> the scope whose end-time state the span's event uses
        self._open: dict[int, Scope] = {}
        # trace_id -> span_id of the local root span being tracked in that trace
        self._roots: dict[int, int] = {}
        self._ai_ancestry = AiAncestry()  # open span -> nearest AI span at or above it
        self._worker: WorkQueue[tuple[ReadableSpan, Identity | None]] = WorkQueue(
            "posthog-otel-spans",
            self._handle,
            max_size=max_queue_size,
            batch_size=_WAKE_BATCH,
            interval=_WAKE_INTERVAL,
            flush_order=FEEDS_EVENTS,  # a client's flush and shutdown drain it first
        )
        self.enabled = True
        self._unsubscribe = observers.on_change(self._on_scope_changed)
        # Live exception capture: full frames, and one event per exception object whichever
        # of span, context or middleware sees it first.
        self._hooked = not span_exceptions.is_hooked()
        if self._hooked:
            span_exceptions.hook_record_exception(lambda: self._exporter.client)

    @property
    def exporter(self) -> PosthogSpanExporter:
        return self._exporter

    # -- stamping -------------------------------------------------------------------------

    def _attributes(self, scope: Scope) -> dict[str, Any]:
        state = scope.resolve()
        cached: dict[str, Any] | None = state.extra.get(self._cache_key)
        if cached is None:
            cached = span_attributes_for(state.ids, state.tags, self._aliases)
            state.extra[self._cache_key] = cached
        return cached

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        if not self.enabled:
            return
        try:
            scope = current_scope(parent_context)
            if scope is None:
                self._nest(span, attribute_store(span), parent_context)
                return
            attributes = stamp_new_span(span, self._attributes(scope))
            # LLM analytics: an AI span is an event whatever the mode
            ai_span = self._nest(span, attributes, parent_context)
            if len(self._open) >= _MAX_OPEN:
                return
            context = span.context
            if _is_local_root(span):
                self._open[context.span_id] = scope
                self._roots[context.trace_id] = context.span_id
            elif self._all or ai_span or EVENT_ATTRIBUTE in attributes:
                self._open[context.span_id] = scope
        except Exception:
            _logger.debug("posthog-otel on_start failed", exc_info=True)

    def _nest(
        self, span: Span, attributes: Any, parent_context: otel_context.Context | None
    ) -> bool:
        """Is the span an AI span? Names its nearest AI ancestor (``posthog.ai.parent_id``),
        through plain spans in between (:mod:`.genai_nesting`)."""
        ai_span = genai.is_ai_span(attributes)
        parent = span.parent
        local_parent = parent.span_id if parent is not None and not parent.is_remote else 0
        nearest = self._ai_ancestry.enter(span.context.span_id, local_parent, ai_span)
        if ai_span:
            if nearest is not None:
                span.set_attribute(genai.AI_PARENT_ATTRIBUTE, format(nearest, "016x"))
            else:  # a parent that became an AI span after it started
                _stamp_ai_parent(span, parent_context)
        return ai_span

    def _on_scope_changed(
        self, scope: Scope, field: str | None, key: str | None, value: Any
    ) -> None:
        """Late identity: stamp what changed on the current span; re-point its trace's root."""
        if not self.enabled:
            return
        span: Any = _get_current().get(runtime.SPAN_KEY)
        if span is None or not span.is_recording():
            return
        if field is None:
            stamp_live_span(span, self._attributes(scope))
        elif field == "tag":
            stamp_live_span(span, span_attributes_for({}, {str(key): value}))
        else:
            stamp_live_span(span, span_attributes_for({field: value}, {}, self._aliases))
        context = span.get_span_context()
        root = self._roots.get(context.trace_id)
        if root is None and _is_local_root(span) and len(self._open) < _MAX_OPEN:
            # A server span started before any PostHog context existed (a framework's own
            # tracing outside user middleware): the context entered inside it is the request's.
            root = self._roots[context.trace_id] = context.span_id
        if root is not None:
            self._open[root] = scope

    # -- ending ---------------------------------------------------------------------------

    def on_end(self, span: ReadableSpan) -> None:
        if not self.enabled:
            return
        try:
            context = span.context
            self._ai_ancestry.leave(context.span_id)
            scope = self._open.pop(context.span_id, None) if self._open else None
            if scope is None:
                if may_become_event(
                    span, self._all, self._root_kinds, _IDENTITY_KEYS, EVENT_ATTRIBUTE
                ) or genai.is_ai_span(attribute_store(span)):
                    self._worker.put((span, None))
                return
            if self._roots.get(context.trace_id) == context.span_id:
                del self._roots[context.trace_id]
            state = scope.resolve()
            if (  # not identified (_identity.IDENTIFYING) or no root events, nothing else to send
                (not self._root_kinds or (state.distinct_id is None and state.session_id is None))
                and not self._all
                and not has_events(span)
                and EVENT_ATTRIBUTE not in attribute_store(span)
                and not genai.is_ai_span(attribute_store(span))
            ):
                return
            identity = Identity(state.ids, state.tags)
            self._worker.put((span, identity))
        except Exception:
            _logger.debug("posthog-otel on_end failed", exc_info=True)

    def _handle(self, batch: list[tuple[ReadableSpan, Identity | None]]) -> None:
        for span, identity in batch:
            self._exporter.export_span(span, identity)

    # -- lifecycle ------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        counts = self._worker.counts()
        # Spans that never became events because of the queue: full, closed, or left over
        # when shutdown's budget ran out.
        dropped = counts.dropped + counts.refused + counts.discarded
        return {"open_spans": len(self._open), "dropped_spans": dropped}

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        budget = timeout_millis / 1000
        flushed = self._worker.flush(budget)
        return self._exporter.force_flush(int(budget * 1000)) and flushed

    def shutdown(self) -> None:
        budget = self._exporter.client.settings.shutdown_timeout
        self._worker.shutdown(budget)
        self._exporter.shutdown(budget * 1000)
        self.enabled = False
        self._unsubscribe()
        if self._hooked:
            span_exceptions.unhook_record_exception()
            self._hooked = False
