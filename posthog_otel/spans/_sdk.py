"""Fast access to SDK span internals on the per-span hot path, with public-API fallbacks.

The span processor runs on every span. The SDK's public accessors copy (``span.events``
builds a tuple, ``span.attributes`` wraps a proxy) and ``set_attributes`` re-validates every
value. The stamp dict is built by us from valid attribute values and cached, so stamping can
write it straight into the span's attribute store — only while the span is still being
started (no other thread can see it yet), only when no attribute limit could be crossed, and
only when the SDK's span looks exactly as expected. Anything else takes the public API.

    stamp_new_span(span, attributes)   # on_start
    stamp_live_span(span, attributes)  # late identity on a started span (values replaced)
    attribute_store(span)              # read-only mapping of a span's attributes
    has_events(span)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

__all__ = ["attribute_store", "has_events", "stamp_live_span", "stamp_new_span"]


def _store_of(span: Any) -> Any:
    attributes = getattr(span, "_attributes", None)
    store = getattr(attributes, "_dict", None)
    if type(store) is OrderedDict or type(store) is dict:
        return attributes, store
    return attributes, None


def stamp_new_span(span: Any, stamp: Mapping[str, Any]) -> Mapping[str, Any]:
    """Add ``stamp`` to a span being started, never replacing attributes it already has.

    Returns the span's attributes afterwards (read-only use).
    """
    attributes, store = _store_of(span)
    if (
        store is None
        or attributes.max_value_len is not None
        or attributes._immutable
        or (attributes.maxlen is not None and len(store) + len(stamp) > attributes.maxlen)
    ):
        existing = span.attributes or {}
        missing = {k: v for k, v in stamp.items() if k not in existing}
        if missing:
            span.set_attributes(missing)
        return span.attributes or {}
    if not store:
        store.update(stamp)
    else:
        for key, value in stamp.items():
            if key not in store:
                store[key] = value
    return store  # type: ignore[no-any-return]


def stamp_live_span(span: Any, stamp: Mapping[str, Any]) -> None:
    """``span.set_attributes(stamp)`` on a started span, without re-validating our values.

    Under the span's lock, as the SDK does; an ended span, a span with attribute limits that
    could apply, or an unexpected span takes the public API (which also logs the ended case).
    """
    attributes, store = _store_of(span)
    lock = getattr(span, "_lock", None)
    attributes_lock = getattr(attributes, "_lock", None)
    if (
        store is None
        or lock is None
        or attributes_lock is None
        or attributes.max_value_len is not None
        or (attributes.maxlen is not None and len(store) + len(stamp) > attributes.maxlen)
    ):
        span.set_attributes(stamp)
        return
    with lock:
        if getattr(span, "_end_time", True) is not None or attributes._immutable:
            fallback = True
        else:
            fallback = False
            with attributes_lock:
                for key, value in stamp.items():
                    if key in store:
                        del store[key]  # a replaced value moves to the end, as in the SDK
                    store[key] = value
    if fallback:
        span.set_attributes(stamp)


def attribute_store(span: Any) -> Mapping[str, Any]:
    """The span's attributes as a plain mapping (read it, never write it)."""
    _, store = _store_of(span)
    if store is not None:
        return store  # type: ignore[no-any-return]
    return span.attributes or {}


def has_events(span: Any) -> bool:
    events = getattr(span, "_events", None)
    if events is not None:
        return bool(events)
    return bool(span.events)


def may_become_event(
    span: Any,
    capture_all: bool,
    root_kinds: frozenset[Any],
    identity_keys: tuple[str, ...],
    marker: str,
) -> bool:
    """Cheap test at span end, for spans without a tracked scope: could it yield events?"""
    if capture_all:
        return True
    try:  # the SDK span's own fields: no tuple or proxy built per span
        if span._events:
            return True
        store = span._attributes._dict
    except AttributeError:
        if span.events:
            return True
        store = span.attributes or {}
    if marker in store:
        return True
    return span.kind in root_kinds and any(key in store for key in identity_keys)
