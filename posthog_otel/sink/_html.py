"""HTML building blocks for the viewer: escaping, links, the page layout and the event rows.

Everything that came from a sender (names, ids, property values, reasons) is untrusted and goes
through :func:`esc` (text and attribute values) or :func:`link` (URLs built with ``urlencode``).

Usage::

    html = layout("Events", body_html, db_path=store.path, active="events")
    rows = event_rows(store.query(EventFilter(limit=50)))
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import urlencode

from .records import KIND_EVENT, KIND_OTLP_LOG, KIND_OTLP_SPAN, StoredEvent

__all__ = [
    "esc",
    "event_label",
    "event_rows",
    "layout",
    "link",
    "pretty_json",
    "properties_view",
    "trace_href",
    "when",
]

_NAV = (
    ("events", "/", "Events"),
    ("exceptions", "/?event=%24exception", "Exceptions"),
    ("llm", "/llm", "LLM"),
    ("rejected", "/?status=rejected", "Rejected"),
    ("api", "/api/events?limit=50", "JSON API"),
)
_ACTIVE = ' class="active"'
_CHIPS = 5
_NESTED_DEPTH = 2


def esc(value: Any) -> str:
    """Text or attribute-safe HTML for any value (None becomes empty)."""
    return "" if value is None else escape(str(value), quote=True)


def link(path: str, **params: Any) -> str:
    """An escaped URL for ``href``: ``path`` plus the non-empty ``params``."""
    query = urlencode({k: str(v) for k, v in params.items() if v not in (None, "")})
    return esc(f"{path}?{query}" if query else path)


def event_href(row_id: int) -> str:
    return esc(f"/events/{row_id}")


def person_href(distinct_id: str) -> str:
    return link("/person", distinct_id=distinct_id)


def trace_href(trace_id: str) -> str:
    return esc(f"/traces/{trace_id}")


def when(moment: float | None, *, received: float | None = None) -> str:
    """Local clock time with milliseconds; the full date (and the arrival time, when given)
    as a tooltip."""
    if moment is None:
        return ""
    seconds, millis = _split(moment)
    local = time.localtime(seconds)
    full = _full(moment)
    shown = time.strftime("%H:%M:%S" if _today(local) else "%b %d %H:%M:%S", local)
    shown += f".{millis:03d}"
    title = full
    if received is not None:
        title = f"event time {full} · received {_full(received)} ({_delay(received - moment)})"
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", local) + f".{millis:03d}"
    return f'<time datetime="{esc(iso)}" title="{esc(title)}">{esc(shown)}</time>'


def _split(moment: float) -> tuple[int, int]:
    """(whole seconds, milliseconds), rounded to the millisecond (05.007 stays .007)."""
    whole, millis = divmod(round(moment * 1000), 1000)
    return int(whole), int(millis)


def _full(moment: float) -> str:
    seconds, millis = _split(moment)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) + f".{millis:03d}"


def _delay(seconds: float) -> str:
    size = abs(seconds)
    if size < 1:
        amount = f"{seconds * 1000:+.0f} ms"
    elif size < 120:
        amount = f"{seconds:+.1f} s"
    elif size < 7200:
        amount = f"{seconds / 60:+.1f} min"
    elif size < 172800:
        amount = f"{seconds / 3600:+.1f} h"
    else:
        amount = f"{seconds / 86400:+.1f} days"
    return f"{amount} after the event"


def _today(local: time.struct_time) -> bool:
    now = time.localtime()
    return (local.tm_year, local.tm_yday) == (now.tm_year, now.tm_yday)


def pretty_json(value: Any) -> str:
    """Indented JSON inside an escaped ``<pre>``."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return f'<pre class="json">{esc(text)}</pre>'


def layout(title: str, body: str, *, db_path: str, active: str = "") -> str:
    nav = "".join(
        f'<a href="{esc(href)}"{_ACTIVE if key == active else ""}>{esc(label)}</a>'
        for key, href, label in _NAV
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · posthog-otel sink</title>"
        '<link rel="stylesheet" href="/static/app.css">'
        '<script src="/static/app.js" defer></script></head><body>'
        '<header class="top"><a class="brand" href="/">posthog-otel sink</a>'
        f'<nav>{nav}</nav><span class="db" title="database file">{esc(db_path)}</span></header>'
        f"<main>{body}</main></body></html>"
    )


def event_label(event: StoredEvent) -> str:
    """The name shown for a row: the event name, the span name, or ``log``."""
    if event.kind == KIND_OTLP_LOG:
        severity = event.properties.get("severity_text")
        return f"log {severity}" if severity else "log"
    return event.event or "(no event name)"


def event_rows(events: Iterable[StoredEvent], *, empty: str = "No events yet.") -> str:
    """``<tr>`` rows for the event table (newest first, as given)."""
    rows = [_row(event) for event in events]
    if not rows:
        return f'<tr><td colspan="6" class="empty">{esc(empty)}</td></tr>'
    return "".join(rows)


def _row(event: StoredEvent) -> str:
    badges = []
    if event.rejected:
        badges.append('<span class="badge bad">rejected</span>')
    if event.kind == KIND_OTLP_SPAN:
        badges.append('<span class="badge kind">span</span>')
    elif event.kind == KIND_OTLP_LOG:
        badges.append('<span class="badge kind">log</span>')
    if event.event == "$exception":
        badges.append('<span class="badge exc">exception</span>')
    if event.properties.get("$process_person_profile") is False:
        badges.append('<span class="badge">personless</span>')
    if event.warnings:
        badges.append(
            f'<span class="badge warn" title="{esc("; ".join(event.warnings))}">'
            f"{len(event.warnings)} warning{'s' if len(event.warnings) > 1 else ''}</span>"
        )
    person = (
        f'<a href="{person_href(event.distinct_id)}">{esc(event.distinct_id)}</a>'
        if event.distinct_id
        else '<span class="muted">—</span>'
    )
    session = (
        f'<a href="{link("/", session_id=event.session_id)}">{esc(event.session_id)}</a>'
        if event.session_id
        else ""
    )
    trace = (
        f'<a class="mono" href="{trace_href(event.trace_id)}" '
        f'title="trace {esc(event.trace_id)}">{esc(event.trace_id[:12])}…</a>'
        if event.trace_id
        else ""
    )
    css = ' class="rejected"' if event.rejected else ""
    return (
        f'<tr{css} data-id="{event.id}">'
        f'<td class="when">{when(event.ts, received=event.received_at)}</td>'
        f'<td class="name"><a href="{event_href(event.id)}">{esc(event_label(event))}</a>'
        f"{''.join(badges)}</td>"
        f'<td class="ident person">{person}</td><td class="ident session">{session}</td>'
        f'<td class="ident trace">{trace}</td><td class="details">{details(event)}</td></tr>'
    )


def details(event: StoredEvent) -> str:
    """The details cell: a short line (reason, exception, log body, span timing) or the first
    properties as key/value chips."""
    props = event.properties
    if event.rejected or event.event == "$exception" or event.kind != KIND_EVENT:
        line = summary(event)
        css = "reason" if event.rejected else "line"
        return f'<span class="{css}">{esc(line)}</span>'
    pairs = [
        (key, value)
        for key, value in props.items()
        if not key.startswith("$") and key not in ("token", "distinct_id")
    ]
    for key in ("$current_url", "$request_path"):
        if key in props and not pairs:
            pairs.append((key, props[key]))
    chips = [
        f'<span class="kv"><span class="k">{esc(key)}</span> '
        f'<span class="v">{esc(_clip(value, 60))}</span></span>'
        for key, value in pairs[:_CHIPS]
    ]
    if len(pairs) > _CHIPS:
        chips.append(f'<span class="muted more">+{len(pairs) - _CHIPS} more</span>')
    return "".join(chips)


def summary(event: StoredEvent) -> str:
    """One line describing a row (reason, exception, log body, span timing, or properties)."""
    props = event.properties
    if event.rejected:
        return f"{event.code}: {event.reason}"
    if event.event == "$exception":
        entries = props.get("$exception_list")
        if isinstance(entries, list) and entries and isinstance(entries[0], dict):
            first = entries[0]
            return f"{first.get('type')}: {first.get('value') or ''}"
    if event.kind == KIND_OTLP_LOG:
        return _clip(props.get("body"))
    if event.kind == KIND_OTLP_SPAN:
        status = props.get("status") or {}
        code = status.get("code") if isinstance(status, dict) else None
        return f"{props.get('kind')} · {props.get('duration_ms')} ms · {code}"
    parts = [
        f"{key}={_clip(value, 40)}"
        for key, value in props.items()
        if not key.startswith("$") and key not in ("token", "distinct_id")
    ]
    for key in ("$current_url", "$request_path"):
        if key in props and not parts:
            parts.append(f"{key}={_clip(props[key], 60)}")
    return _clip(", ".join(parts[:6]))


def _clip(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def properties_view(props: dict[str, Any], *, element_id: str = "properties") -> str:
    """Properties as a key/value table (own keys first, then ``$`` keys) with the raw JSON one
    click away."""
    if not props:
        return '<p class="muted">No properties.</p>'
    table = _props_table(props, 0, element_id)
    return (
        f'{table}<details class="raw-json" id="{esc(element_id)}-json">'
        f"<summary>JSON</summary>{pretty_json(props)}</details>"
    )


def _props_table(props: dict[str, Any], depth: int, element_id: str = "") -> str:
    keys = sorted(props, key=lambda key: (key.startswith("$"), key))
    rows = "".join(
        f'<tr><th scope="row">{esc(key)}</th><td>{_value(props[key], depth)}</td></tr>'
        for key in keys
    )
    ident = f' id="{esc(element_id)}"' if element_id else ""
    css = "props" if depth == 0 else "props nested"
    return f'<table class="{css}"{ident}><tbody>{rows}</tbody></table>'


def _value(value: Any, depth: int) -> str:
    if isinstance(value, str):
        return (
            f'<span class="str">{esc(value)}</span>' if value else '<span class="muted">""</span>'
        )
    if isinstance(value, dict) and value and depth < _NESTED_DEPTH:
        return _props_table(value, depth + 1)
    text = json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, dict | list) and len(text) > 80:
        text = json.dumps(value, ensure_ascii=False, default=str, indent=2)
        return f'<pre class="json inline">{esc(text)}</pre>'
    return f'<code class="lit">{esc(text)}</code>'
