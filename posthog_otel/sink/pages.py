"""The viewer's pages: the live event list with filters and chart, a person, one event.

Each function takes the store and the request's query and returns a complete HTML document
(or, for :func:`live_update`, the JSON the page's script polls). All values from events are
escaped by the helpers in :mod:`._html`.

Usage::

    html = index_page(store, ViewQuery.from_query({"event": ["signed_up"]}))
    html = person_page(store, "user-1")   # None when the sink has no event of that person
    html = event_page(store, 42)          # None when there is no such row

The trace page is :mod:`.trace_view`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._html import (
    esc,
    event_label,
    event_rows,
    layout,
    link,
    pretty_json,
    properties_view,
    summary,
    trace_href,
    when,
)
from .ai_view import render_conversation
from .chart import RANGES, bucket_plan, render_chart
from .exception_view import render_exception_list
from .records import (
    KIND_EVENT,
    KIND_OTLP_SPAN,
    KINDS,
    STATUS_ACCEPTED,
    STATUS_REJECTED,
    StoredEvent,
)
from .store import ORDER_TIME, EventFilter, EventStore

__all__ = ["ViewQuery", "event_page", "index_page", "live_update", "not_found_page", "person_page"]

_DEFAULT_LIMIT = 200
_DATALIST = ' list="event-names"'
_ACTIVE = ' class="active"'
_FILTER_FIELDS = ("event", "distinct_id", "session_id", "trace_id", "kind", "status")


@dataclass(frozen=True)
class ViewQuery:
    """The list's filters and options, from the page's query string."""

    event: str = ""
    distinct_id: str = ""
    session_id: str = ""
    trace_id: str = ""
    kind: str = ""
    status: str = ""
    range: str = "auto"
    limit: int = _DEFAULT_LIMIT

    @classmethod
    def from_query(cls, query: Mapping[str, list[str]]) -> ViewQuery:
        def first(name: str) -> str:
            values = query.get(name) or [""]
            return values[0].strip()[:1000]

        kind = first("kind")
        status = first("status")
        range_name = first("range")
        try:
            limit = max(1, min(int(first("limit") or _DEFAULT_LIMIT), 2000))
        except ValueError:
            limit = _DEFAULT_LIMIT
        return cls(
            event=first("event"),
            distinct_id=first("distinct_id"),
            session_id=first("session_id"),
            trace_id=first("trace_id"),
            kind=kind if kind in KINDS else "",
            status=status if status in (STATUS_ACCEPTED, STATUS_REJECTED) else "",
            range=range_name if range_name in RANGES else "auto",
            limit=limit,
        )

    def filter(self, limit: int | None = None) -> EventFilter:
        return EventFilter(
            event=self.event or None,
            distinct_id=self.distinct_id or None,
            session_id=self.session_id or None,
            trace_id=self.trace_id or None,
            kind=self.kind or None,
            status=self.status or None,
            limit=limit or self.limit,
            order=ORDER_TIME,
        )

    def params(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {name: getattr(self, name) for name in _FILTER_FIELDS}
        values["range"] = self.range if self.range != "auto" else ""
        values.update(overrides)
        return values

    @property
    def active(self) -> bool:
        return any(getattr(self, name) for name in _FILTER_FIELDS)


# --------------------------------------------------------------------------- the event list


def index_page(store: EventStore, view: ViewQuery) -> str:
    events = store.query(view.filter())
    names = store.event_names()
    body = (
        _filters_form(view, names)
        + f'<div class="card chart-box"><div class="statusline"><strong>{_chart_title(view)}</strong>'
        f"{_range_links(view)}</div>"
        f'<div id="chart">{_chart(store, view)}</div></div>'
        + _status_line(store, view, len(events))
        + _events_table(
            events, live_url=link("/_live", **view.params()), version=store.version(), view=view
        )
    )
    title = "Events" if not view.active else "Filtered events"
    active = (
        "rejected"
        if view.status == STATUS_REJECTED
        else ("exceptions" if view.event == "$exception" else "events")
    )
    return layout(title, body, db_path=store.path, active=active)


def live_update(store: EventStore, view: ViewQuery) -> dict[str, Any]:
    """What the list page's script swaps in: rows, chart, summary and a change marker."""
    events = store.query(view.filter())
    return {
        "version": store.version(),
        "rows": event_rows(events, empty=_empty_text(view)),
        "chart": _chart(store, view),
        "summary": _summary_text(store, view, len(events)),
    }


def _chart(store: EventStore, view: ViewQuery) -> str:
    where = EventFilter(
        **{
            **view.filter().__dict__,
            "kind": KIND_EVENT,
            "status": view.status or STATUS_ACCEPTED,
        }
    )
    first, last = store.ts_bounds(where)
    plan = bucket_plan(view.range, first, last)
    series = store.counts_over_time(where, plan.start, plan.bucket_seconds, plan.buckets)
    return render_chart(series, plan)


def _chart_title(view: ViewQuery) -> str:
    return "Rejected events per name" if view.status == STATUS_REJECTED else "Events per name"


def _filters_form(view: ViewQuery, names: list[tuple[str, int]]) -> str:
    options = "".join(f'<option value="{esc(name)}">' for name, _ in names)
    kinds = _select("kind", view.kind, [("", "any"), *[(k, k) for k in KINDS]])
    statuses = _select(
        "status",
        view.status,
        [("", "any"), (STATUS_ACCEPTED, "accepted"), (STATUS_REJECTED, "rejected")],
    )
    inputs = "".join(
        f'<label>{label}<input name="{name}" id="filter-{name}" value="{esc(getattr(view, name))}"'
        f'{_DATALIST if name == "event" else ""} autocomplete="off"></label>'
        for name, label in (
            ("event", "Event"),
            ("distinct_id", "Distinct id"),
            ("session_id", "Session id"),
            ("trace_id", "Trace id"),
        )
    )
    keep_range = (
        f'<input type="hidden" name="range" value="{esc(view.range)}">'
        if view.range != "auto"
        else ""
    )
    return (
        f'<form class="card filters" method="get" action="/" id="filters">{inputs}'
        f"<label>Kind{kinds}</label><label>Status{statuses}</label>{keep_range}"
        '<button class="primary" type="submit" id="apply-filters">Filter</button>'
        '<a class="button" href="/" id="clear-filters">Clear</a>'
        f'<datalist id="event-names">{options}</datalist></form>'
    )


def _select(name: str, current: str, choices: list[tuple[str, str]]) -> str:
    options = "".join(
        f'<option value="{esc(value)}"{" selected" if value == current else ""}>{esc(label)}</option>'
        for value, label in choices
    )
    return f'<select name="{name}" id="filter-{name}">{options}</select>'


def _range_links(view: ViewQuery) -> str:
    links = "".join(
        f'<a href="{link("/", **view.params(range=name))}"'
        f"{_ACTIVE if name == view.range else ''}>{esc(name)}</a>"
        for name in RANGES
    )
    return f'<span class="range muted">range:{links}</span>'


def _status_line(store: EventStore, view: ViewQuery, shown: int) -> str:
    return (
        '<div class="statusline">'
        f'<span id="event-summary">{esc(_summary_text(store, view, shown))}</span>'
        '<button type="button" id="live-toggle">Pause</button>'
        '<span class="muted" id="live-state">live</span></div>'
    )


def _summary_text(store: EventStore, view: ViewQuery, shown: int) -> str:
    total = store.count(view.filter())
    rejected = store.count(EventFilter(**{**view.filter().__dict__, "status": STATUS_REJECTED}))
    text = f"{total} matching" if view.active else f"{total} received"
    if rejected:
        text += f", {rejected} rejected"
    if shown < total:
        text += f" · newest {shown} shown"
    return text


def _empty_text(view: ViewQuery) -> str:
    if view.active:
        return "No events match these filters."
    return "No events yet. Point an app at this sink: POSTHOG_HOST=<this address>."


def _events_table(
    events: list[StoredEvent], *, live_url: str, version: str, view: ViewQuery | None = None
) -> str:
    empty = _empty_text(view) if view is not None else "No events yet."
    return (
        f'<div data-live-url="{live_url}" data-version="{esc(version)}">'
        '<table class="events" id="events"><thead><tr>'
        '<th title="when the event happened; hover a time for when it arrived">Event time</th>'
        "<th>Event</th>"
        "<th>Person</th><th>Session</th><th>Trace</th><th>Details</th></tr></thead>"
        f'<tbody id="event-rows">{event_rows(events, empty=empty)}</tbody></table></div>'
    )


# --------------------------------------------------------------------------- a person


def person_page(store: EventStore, distinct_id: str) -> str | None:
    person = store.person(distinct_id)
    if not person.count:
        return None
    events = store.query(EventFilter(distinct_id=distinct_id, limit=500, order=ORDER_TIME))
    sessions = "".join(
        f'<li><a href="{link("/", session_id=s)}">{esc(s)}</a></li>' for s in person.sessions
    )
    props = (
        properties_view(person.person_properties, element_id="person-properties")
        if person.person_properties
        else '<p class="muted">No $set / $set_once properties received.</p>'
    )
    body = (
        f'<h1>Person <span class="mono">{esc(distinct_id)}</span></h1>'
        '<div class="card"><dl class="meta">'
        f'<dt>Events</dt><dd id="person-count">{person.count}</dd>'
        f"<dt>First seen</dt><dd>{when(person.first_seen)}</dd>"
        f"<dt>Last seen</dt><dd>{when(person.last_seen)}</dd>"
        f'<dt>Sessions</dt><dd><ul class="sessions">{sessions}</ul></dd>'
        f"</dl></div><h2>Person properties</h2>{props}<h2>Events</h2>"
        + _events_table(
            events,
            live_url=link("/_live", distinct_id=distinct_id, limit=500),
            version=store.version(),
        )
    )
    return layout(f"Person {distinct_id}", body, db_path=store.path)


# --------------------------------------------------------------------------- one event


def event_page(store: EventStore, row_id: int) -> str | None:
    event = store.get(row_id)
    if event is None:
        return None
    parts = [f"<h1>{esc(event_label(event))}{_status_badge(event)}</h1>"]
    if event.rejected:
        parts.append(
            f'<div class="card"><strong class="reason">Rejected: {esc(event.code)}</strong>'
            f'<p class="reason" id="reject-reason">{esc(event.reason)}</p>'
            '<p class="muted">PostHog would not ingest this request.</p></div>'
        )
    if event.warnings:
        items = "".join(f"<li>{esc(w)}</li>" for w in event.warnings)
        parts.append(
            f'<div class="card"><strong>Warnings</strong><ul class="warnings">{items}</ul></div>'
        )
    parts.append(_meta(event))
    if event.event == "$exception":
        parts.append("<h2>Exception</h2>")
        parts.append(render_exception_list(event.properties.get("$exception_list")))
    if (event.event or "").startswith("$ai_"):
        parts.append(render_conversation(event.properties))
    if event.kind == KIND_OTLP_SPAN:
        parts.append(_span_exceptions(event))
    raw = event.raw if isinstance(event.raw, dict) else {}
    for key in ("$set", "$set_once"):
        if isinstance(raw.get(key), dict):
            parts.append(
                f"<h2>{esc(key)}</h2>{properties_view(raw[key], element_id=key.strip('$'))}"
            )
    parts.append(f"<h2>Properties</h2>{properties_view(event.properties)}")
    parts.append(f"<details><summary>As received</summary>{pretty_json(event.raw)}</details>")
    return layout(event_label(event), "".join(parts), db_path=store.path)


def _status_badge(event: StoredEvent) -> str:
    if event.rejected:
        return '<span class="badge bad">rejected</span>'
    return ""


def _meta(event: StoredEvent) -> str:
    rows: list[tuple[str, str]] = [
        ("Kind", esc(event.kind)),
        ("Status", esc(event.status)),
        ("Endpoint", f'<span class="mono">{esc(event.endpoint)}</span>'),
        ("Event time", f'{when(event.ts)} <span class="muted mono">{esc(event.timestamp)}</span>'),
        ("Received", when(event.received_at)),
    ]
    if event.uuid:
        rows.append(("UUID", f'<span class="mono">{esc(event.uuid)}</span>'))
    if event.distinct_id:
        rows.append(
            (
                "Person",
                f'<a href="{link("/person", distinct_id=event.distinct_id)}">{esc(event.distinct_id)}</a>',
            )
        )
    if event.session_id:
        rows.append(
            (
                "Session",
                f'<a href="{link("/", session_id=event.session_id)}">{esc(event.session_id)}</a>',
            )
        )
    if event.trace_id:
        rows.append(
            (
                "Trace",
                f'<a class="mono" id="trace-link" href="{trace_href(event.trace_id)}">'
                f"{esc(event.trace_id)}</a>",
            )
        )
    if event.span_id:
        rows.append(("Span", f'<span class="mono">{esc(event.span_id)}</span>'))
    if event.api_key:
        rows.append(
            ("Project key (fingerprint)", f'<span class="mono">{esc(event.api_key)}</span>')
        )
    rows.append(("Summary", esc(summary(event))))
    items = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    return f'<div class="card"><dl class="meta" id="event-meta">{items}</dl></div>'


def _span_exceptions(event: StoredEvent) -> str:
    """Exceptions recorded on a span (OTel ``exception`` span events), as an error tracker."""
    from ..errors import exception_list_from_stacktrace, span_exception_handled

    status = event.properties.get("status")
    failed = isinstance(status, dict) and status.get("code") == "ERROR"
    blocks = []
    for span_event in event.properties.get("events") or []:
        if not isinstance(span_event, dict) or span_event.get("name") != "exception":
            continue
        attrs = span_event.get("attributes") or {}
        if not isinstance(attrs, dict):
            continue
        entries = span_event.get("exception_list")  # parsed at ingest
        if not isinstance(entries, list):  # a row stored by an older version
            stacktrace = attrs.get("exception.stacktrace")
            entries = exception_list_from_stacktrace(
                stacktrace if isinstance(stacktrace, str) else "",
                exc_type=_str_or_none(attrs.get("exception.type")),
                message=_str_or_none(attrs.get("exception.message")),
                handled=span_exception_handled(attrs.get("exception.escaped"), span_failed=failed),
            )
        blocks.append(render_exception_list(entries))
    if not blocks:
        return ""
    return "<h2>Exceptions recorded on this span</h2>" + "".join(blocks)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def not_found_page(store: EventStore, what: str) -> str:
    body = f'<h1>Not found</h1><p>{esc(what)}</p><p><a href="/">Back to the events</a></p>'
    return layout("Not found", body, db_path=store.path)
