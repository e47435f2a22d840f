"""The trace page: everything the sink received for one trace id, on one timeline.

OTLP spans (``/i/v1/traces``) are drawn as bars, nested under their parent span; PostHog
events, ``$exception`` events and OTLP log records of the trace are points, placed under the
span they were captured in (``$span_id`` / the record's span id) or at the top level when that
span never arrived. Exceptions recorded on a span (OTel ``exception`` span events) are points
under their span. Above the timeline: the person(s) and session(s) of the trace, its duration
and counts (spans, events, log records, exceptions).

Bars are stretched SVG rectangles with no text inside; every label is HTML, so text keeps its
size at any width (and no inline style is needed under the page's Content-Security-Policy).

Usage::

    html = trace_page(store, "4bf92f3577b34da6a3ce929d0e0e4736")   # None: nothing received
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ._html import esc, event_href, event_label, layout, link, person_href, summary, when
from .records import KIND_EVENT, KIND_OTLP_LOG, KIND_OTLP_SPAN, StoredEvent
from .store import ORDER_TIME, EventFilter, EventStore

__all__ = ["TRACE_ID", "trace_page"]

TRACE_ID = re.compile(r"^[0-9a-fA-F]{1,64}$")
_MAX_ROWS = 2000
_MAX_DEPTH = 8
_SCALE = 1000  # bar width in the bars' viewBox units
_MIN_MARK = 3


@dataclass
class _Item:
    """One timeline row: a span (with an end) or a point (an event, a log, an exception)."""

    start: float
    end: float | None
    label: str
    kind: str  # "span", "event", "exception", "log", "span-exception"
    row: StoredEvent
    detail: str = ""
    span_id: str | None = None
    parent: str | None = None
    children: list[_Item] = field(default_factory=list)


def trace_page(store: EventStore, trace_id: str) -> str | None:
    """The page for ``trace_id``; None when the sink holds nothing of that trace."""
    trace_id = trace_id.strip().lower()
    if not TRACE_ID.match(trace_id):
        return None
    rows = store.query(EventFilter(trace_id=trace_id, order=ORDER_TIME, limit=_MAX_ROWS))
    if not rows:
        return None
    rows.reverse()  # oldest first
    roots = _tree([_item(row) for row in rows])
    flat = list(_walk(roots, 0))
    start = min(item.start for item, _ in flat)
    end = max(item.end if item.end is not None else item.start for item, _ in flat)
    body = (
        f'<h1>Trace <span class="mono">{esc(trace_id)}</span></h1>'
        + _overview(trace_id, rows, flat, start, end)
        + "<h2>Timeline</h2>"
        + _timeline(flat, start, end)
        + _exceptions(flat)
    )
    return layout(f"Trace {trace_id[:12]}", body, db_path=store.path)


# --------------------------------------------------------------------------- building the tree


def _item(row: StoredEvent) -> _Item:
    ts = row.ts if row.ts is not None else row.received_at
    props = row.properties
    if row.kind == KIND_OTLP_SPAN and not row.rejected:
        duration = props.get("duration_ms")
        end = ts + duration / 1000 if isinstance(duration, int | float) and duration >= 0 else None
        parent = props.get("parent_span_id")
        item = _Item(
            start=ts,
            end=end,
            label=event_label(row),
            kind="span",
            row=row,
            detail=_span_detail(props),
            span_id=row.span_id,
            parent=parent if isinstance(parent, str) and parent else None,
        )
        item.children.extend(_span_exceptions(row, ts))
        return item
    kind = "log" if row.kind == KIND_OTLP_LOG else "event"
    if row.event == "$exception":
        kind = "exception"
    detail = summary(row) if kind != "event" or row.rejected else _service(props)
    return _Item(
        start=ts, end=None, label=event_label(row), kind=kind, row=row, detail=detail,
        parent=row.span_id,
    )  # fmt: skip


def _span_exceptions(row: StoredEvent, fallback: float) -> list[_Item]:
    found = []
    for span_event in row.properties.get("events") or []:
        if not isinstance(span_event, dict) or span_event.get("name") != "exception":
            continue
        attrs = span_event.get("attributes")
        attrs = attrs if isinstance(attrs, dict) else {}
        text = (
            f"{attrs.get('exception.type') or 'exception'}: {attrs.get('exception.message') or ''}"
        )
        found.append(
            _Item(
                start=_iso_seconds(span_event.get("time")) or fallback,
                end=None,
                label="exception on span",
                kind="span-exception",
                row=row,
                detail=text,
            )
        )
    return found


def _iso_seconds(value: Any) -> float | None:
    from datetime import datetime

    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _span_detail(props: dict[str, Any]) -> str:
    status = props.get("status")
    code = status.get("code") if isinstance(status, dict) else None
    parts = [str(props.get("kind") or "")]
    service = _service(props)
    if service:
        parts.append(service)
    if code and code != "UNSET":
        parts.append(str(code))
    return " · ".join(part for part in parts if part)


def _service(props: dict[str, Any]) -> str:
    resource = props.get("resource")
    if isinstance(resource, dict) and isinstance(resource.get("service.name"), str):
        return str(resource["service.name"])
    name = props.get("service.name") or props.get("$service_name")
    return name if isinstance(name, str) else ""


def _tree(items: list[_Item]) -> list[_Item]:
    """Nest spans under their parents and points under their span; the rest are roots."""
    spans: dict[str, _Item] = {
        item.span_id: item for item in items if item.kind == "span" and item.span_id
    }
    roots: list[_Item] = []
    for item in items:
        parent = spans.get(item.parent) if item.parent else None
        if parent is not None and parent is not item and not _is_ancestor(item, parent, spans):
            parent.children.append(item)
        else:
            roots.append(item)
    return roots


def _is_ancestor(item: _Item, other: _Item, spans: dict[str, _Item]) -> bool:
    """Whether ``item`` is above ``other`` (a parent cycle in what the senders claim)."""
    seen: set[int] = set()
    current: _Item | None = other
    while current is not None and id(current) not in seen:
        if current is item:
            return True
        seen.add(id(current))
        current = spans.get(current.parent) if current.parent else None
    return False


def _walk(items: list[_Item], depth: int) -> Any:
    for item in sorted(items, key=lambda i: (i.start, i.kind != "span")):
        yield item, depth
        yield from _walk(item.children, depth + 1)


# --------------------------------------------------------------------------- rendering


def _overview(
    trace_id: str,
    rows: list[StoredEvent],
    flat: list[tuple[_Item, int]],
    start: float,
    end: float,
) -> str:
    people = sorted({row.distinct_id for row in rows if row.distinct_id})
    sessions = sorted({row.session_id for row in rows if row.session_id})
    services = sorted({s for row in rows if (s := _service(row.properties))})
    spans = sum(1 for item, _ in flat if item.kind == "span")
    events = sum(1 for row in rows if row.kind == KIND_EVENT)
    logs = sum(1 for row in rows if row.kind == KIND_OTLP_LOG)
    exceptions = sum(1 for item, _ in flat if item.kind in ("exception", "span-exception"))
    person_links = ", ".join(f'<a href="{person_href(p)}">{esc(p)}</a>' for p in people)
    session_links = ", ".join(f'<a href="{link("/", session_id=s)}">{esc(s)}</a>' for s in sessions)
    none = '<span class="muted">—</span>'
    items = [
        ("Person", person_links or none, "trace-person"),
        ("Session", session_links or none, "trace-session"),
        ("Started", when(start), ""),
        ("Duration", esc(_duration(end - start)), "trace-duration"),
        ("Spans", str(spans), "trace-spans"),
        ("Events", str(events), "trace-events"),
        ("Log records", str(logs), "trace-logs"),
        ("Exceptions", str(exceptions), "trace-exceptions"),
    ]
    if services:
        items.append(("Services", esc(", ".join(services)), ""))
    items.append(
        ("Rows", f'<a href="{link("/", trace_id=trace_id)}">show in the event list</a>', "")
    )
    cells = "".join(
        f"<dt>{label}</dt><dd{_id(ident)}>{value}</dd>" for label, value, ident in items
    )
    return f'<div class="card"><dl class="meta" id="trace-meta">{cells}</dl></div>'


def _id(ident: str) -> str:
    return f' id="{ident}"' if ident else ""


def _timeline(flat: list[tuple[_Item, int]], start: float, end: float) -> str:
    total = max(end - start, 1e-6)
    axis = (
        '<div class="tl-row tl-axis" aria-hidden="true"><span class="tl-label"></span>'
        f'<span class="tl-ticks"><span>0</span><span>{esc(_duration(total / 2))}</span>'
        f'<span>{esc(_duration(total))}</span></span><span class="tl-time"></span></div>'
    )
    rows = [_timeline_row(item, depth, start, total) for item, depth in flat]
    return f'<div class="card timeline" id="timeline">{axis}{"".join(rows)}</div>'


def _timeline_row(item: _Item, depth: int, start: float, total: float) -> str:
    offset = item.start - start
    left = _SCALE * offset / total
    if item.end is not None:
        width = max(_SCALE * (item.end - item.start) / total, _MIN_MARK)
        timing = f"+{_duration(offset)} · {_duration(item.end - item.start)}"
    else:
        width = _MIN_MARK
        timing = f"+{_duration(offset)}"
    left = min(left, _SCALE - width)
    badge = {
        "span": '<span class="badge kind">span</span>',
        "exception": '<span class="badge exc">exception</span>',
        "span-exception": '<span class="badge exc">exception</span>',
        "log": '<span class="badge kind">log</span>',
        "event": "",
    }[item.kind]
    if item.row.rejected:
        badge += '<span class="badge bad">rejected</span>'
    detail = f'<span class="tl-detail muted">{esc(item.detail)}</span>' if item.detail else ""
    css = f"tl-row tl-{item.kind} d{min(depth, _MAX_DEPTH)}"
    return (
        f'<div class="{css}" data-id="{item.row.id}" data-kind="{item.kind}">'
        f'<span class="tl-label"><a href="{event_href(item.row.id)}">{esc(item.label)}</a>'
        f"{badge}{detail}</span>"
        f'<svg class="tl-bar" viewBox="0 0 {_SCALE} 10" preserveAspectRatio="none" '
        f'aria-hidden="true"><rect class="tl-{item.kind}" x="{left:.2f}" y="1" '
        f'width="{width:.2f}" height="8"/></svg>'
        f'<span class="tl-time mono">{esc(timing)}</span></div>'
    )


def _exceptions(flat: list[tuple[_Item, int]]) -> str:
    found = [item for item, _ in flat if item.kind in ("exception", "span-exception")]
    if not found:
        return ""
    entries = "".join(
        f'<li><a href="{event_href(item.row.id)}">{esc(item.detail or item.label)}</a> '
        f'<span class="muted">{when(item.start)}'
        f"{' · recorded on span ' + esc(item.row.event) if item.kind == 'span-exception' else ''}"
        "</span></li>"
        for item in found
    )
    return f'<h2>Exceptions</h2><ul class="card trace-exceptions">{entries}</ul>'


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "0 ms"
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"
