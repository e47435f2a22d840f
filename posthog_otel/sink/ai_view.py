"""LLM analytics in the viewer: the generations list and the conversation of one AI event.

Usage::

    html = generations_page(store)                 # /llm: model, tokens, latency, person
    html = render_conversation(event.properties)   # on an $ai_* event's page ("" otherwise)

Messages are read in PostHog's shapes (``{"role", "content"}`` with ``content`` a string or a
list of ``{"type": "text", "text"}`` / ``{"type": "function", "function": {...}}`` blocks, and
``tool_calls``); anything else is shown as JSON. Every value is escaped.
"""

from __future__ import annotations

import json
from typing import Any

from ._html import esc, event_href, layout, person_href, trace_href, when
from .store import ORDER_TIME, EventFilter, EventStore

__all__ = ["generations_page", "render_conversation"]

_LIMIT = 200


def _number(value: Any, digits: int = 0) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return f"{value:.{digits}f}" if digits else str(value)


def generations_page(store: EventStore) -> str:
    rows = []
    for event in store.query(EventFilter(event="$ai_generation", limit=_LIMIT, order=ORDER_TIME)):
        props = event.properties
        person = event.distinct_id or ""
        trace = props.get("$ai_trace_id")
        error = '<span class="badge bad">error</span>' if props.get("$ai_is_error") else ""
        rows.append(
            "<tr>"
            f'<td><a href="{event_href(event.id)}">{when(event.ts, received=event.received_at)}'
            "</a></td>"
            f'<td class="mono">{esc(props.get("$ai_model"))}{error}</td>'
            f"<td>{esc(props.get('$ai_provider'))}</td>"
            f'<td class="num">{_number(props.get("$ai_input_tokens"))}</td>'
            f'<td class="num">{_number(props.get("$ai_output_tokens"))}</td>'
            f'<td class="num">{_number(props.get("$ai_latency"), 3)}</td>'
            f'<td><a href="{person_href(person)}">{esc(person)}</a></td>'
            + (
                f'<td><a class="mono" href="{trace_href(str(trace))}">{esc(str(trace)[:12])}</a></td>'
                if trace
                else "<td></td>"
            )
            + "</tr>"
        )
    table = (
        '<table class="events" id="generations"><thead><tr><th>Event time</th><th>Model</th>'
        "<th>Provider</th><th>Input tokens</th><th>Output tokens</th><th>Latency (s)</th>"
        f"<th>Person</th><th>Trace</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p class="muted" id="generations">No $ai_generation events yet.</p>'
    )
    body = f"<h1>LLM generations</h1><p class='muted'>The newest {_LIMIT}.</p>{table}"
    return layout("LLM generations", body, db_path=store.path, active="llm")


def _blocks(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return f'<div class="text">{esc(content)}</div>'
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(f'<div class="text">{esc(block.get("text"))}</div>')
            elif isinstance(block, dict) and isinstance(block.get("function"), dict):
                parts.append(_tool_call(block))
            else:
                parts.append(_json(block))
        return "".join(parts)
    return _json(content)


def _tool_call(call: dict[str, Any]) -> str:
    function = call.get("function") or {}
    return (
        f'<div class="tool-call">calls <strong>{esc(function.get("name"))}</strong>'
        f"<code>{esc(function.get('arguments'))}</code></div>"
    )


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, indent=1)
    return f'<pre class="json">{esc(text)}</pre>'


def _messages(messages: Any, element_id: str) -> str:
    if not isinstance(messages, list):
        return _json(messages)
    items = []
    for message in messages:
        if not isinstance(message, dict):
            items.append(f"<li>{_json(message)}</li>")
            continue
        calls = message.get("tool_calls")
        extra = "".join(_tool_call(c) for c in calls if isinstance(c, dict)) if calls else ""
        items.append(
            f'<li class="message"><span class="role">{esc(message.get("role"))}</span>'
            f"{_blocks(message.get('content'))}{extra}</li>"
        )
    return f'<ol class="conversation" id="{element_id}">{"".join(items)}</ol>'


def render_conversation(props: dict[str, Any]) -> str:
    """The input and output of an AI event, as a conversation ("" when it has none)."""
    parts = []
    for key, title, element_id in (
        ("$ai_input", "Input", "ai-input"),
        ("$ai_output_choices", "Output", "ai-output"),
        ("$ai_input_state", "Input state", "ai-input-state"),
        ("$ai_output_state", "Output state", "ai-output-state"),
    ):
        if key in props:
            parts.append(f"<h3>{title}</h3>{_messages(props[key], element_id)}")
    if not parts:
        return ""
    facts = " · ".join(
        f"{label} {esc(value)}"
        for label, value in (
            ("model", props.get("$ai_model")),
            ("tokens in", _number(props.get("$ai_input_tokens"))),
            ("out", _number(props.get("$ai_output_tokens"))),
            ("latency", _number(props.get("$ai_latency"), 3)),
        )
        if value not in (None, "")
    )
    return f'<h2>Conversation</h2><p class="muted">{facts}</p>{"".join(parts)}'
