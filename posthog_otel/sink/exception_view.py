"""Render a ``$exception_list`` the way an error tracker does.

One block per exception (outermost first, then its causes or group members), each with its
type, message and mechanism, and its frames most recent call first. In-app frames are
highlighted and open with their source context (``pre_context``, ``context_line``,
``post_context``, numbered); runs of library frames are folded into one collapsed group. A
frame without ``in_app`` is judged as PostHog judges it: library code when its path is in
site-/dist-packages or the standard library (or, without a path, its module is a standard
library one), the app's otherwise.

Usage::

    html = render_exception_list(event.properties["$exception_list"])
"""

from __future__ import annotations

import re
import sys
from typing import Any

from ._html import esc

__all__ = ["render_exception_list"]

_LIBRARY_PATH = re.compile(r"[\\/](?:site|dist)-packages[\\/]|[\\/]lib[\\/]python\d[\d.]{0,6}[\\/]")
_STDLIB_MODULES: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())


def render_exception_list(entries: Any) -> str:
    """HTML for a ``$exception_list`` (anything malformed is shown, never raised)."""
    if not isinstance(entries, list) or not entries:
        return '<p class="muted">This event has no $exception_list.</p>'
    blocks = []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            blocks.append(f'<p class="reason">entry {number} is not an object</p>')
            continue
        blocks.append(_entry(entry, number, len(entries)))
    return f'<section class="card exception">{"".join(blocks)}</section>'


def _entry(entry: dict[str, Any], number: int, total: int) -> str:
    mechanism = entry.get("mechanism") if isinstance(entry.get("mechanism"), dict) else {}
    assert isinstance(mechanism, dict)
    relation = ""
    if number:
        source = mechanism.get("source")
        if source == "member" or str(source).startswith("exceptions["):
            relation = "Group member"
        elif source in ("context", "__context__"):
            relation = "Context (being handled when the above was raised)"
        elif number == total - 1:
            relation = "Root cause"
        else:
            relation = "Caused by"
        relation = f'<p class="exc-relation">{relation}</p>'
    module = entry.get("module")
    # PostHog shows the type as sent (module apart), so the page does too.
    in_module = f' <span class="muted">{esc(module)}</span>' if module else ""
    handled = mechanism.get("handled")
    badges = []
    if handled is True:
        badges.append('<span class="badge">handled</span>')
    elif handled is False:
        badges.append('<span class="badge bad">unhandled</span>')
    if mechanism.get("is_exception_group"):
        badges.append('<span class="badge">exception group</span>')
    if mechanism.get("type"):
        badges.append(f'<span class="badge">{esc(mechanism.get("type"))}</span>')
    head = (
        f'{relation}<h3 class="exc-head"><span class="exc-type">{esc(entry.get("type"))}</span>: '
        f'<span class="exc-value">{esc(entry.get("value"))}</span>{"".join(badges)}{in_module}</h3>'
    )
    stacktrace = entry.get("stacktrace")
    frames = stacktrace.get("frames") if isinstance(stacktrace, dict) else None
    if not isinstance(frames, list) or not frames:
        return head + '<p class="muted">No stack frames.</p>'
    return head + _frames([f for f in frames if isinstance(f, dict)])


def _frames(frames: list[dict[str, Any]]) -> str:
    """Most recent call first; consecutive library frames folded together."""
    newest_first = list(reversed(frames))
    parts: list[str] = ['<p class="muted">Most recent call first.</p><div class="frames">']
    library: list[str] = []
    opened_first = False

    def flush_library() -> None:
        if library:
            count = len(library)
            parts.append(
                f'<details class="library-frames"><summary>{count} library '
                f"frame{'s' if count > 1 else ''}</summary>{''.join(library)}</details>"
            )
            library.clear()

    for frame in newest_first:
        in_app = _in_app(frame)
        if in_app is False:
            library.append(_frame(frame, "library", open_=False))
            continue
        flush_library()
        open_ = in_app is True or not opened_first
        opened_first = True
        parts.append(_frame(frame, "in-app" if in_app else "unknown", open_=open_))
    flush_library()
    parts.append("</div>")
    return "".join(parts)


def _in_app(frame: dict[str, Any]) -> bool:
    in_app = frame.get("in_app")
    if isinstance(in_app, bool):
        return in_app
    path = frame.get("abs_path")
    if isinstance(path, str) and path:
        return _LIBRARY_PATH.search(path) is None
    module = frame.get("module")
    return not (isinstance(module, str) and module.partition(".")[0] in _STDLIB_MODULES)


def _frame(frame: dict[str, Any], css: str, *, open_: bool) -> str:
    function = frame.get("qualname") or frame.get("function") or "?"
    filename = frame.get("filename") or frame.get("abs_path") or "?"
    lineno = frame.get("lineno")
    module = frame.get("module")
    extra = f'<span class="muted">{esc(module)}</span>' if module else ""
    tag = '<span class="badge app">in app</span>' if css == "in-app" else ""
    line = f" line {esc(lineno)}" if isinstance(lineno, int) else ""
    summary = (
        f'<summary class="frame-head"><code class="fn">{esc(function)}</code>'
        f'<span>in <code class="file" title="{esc(frame.get("abs_path"))}">{esc(filename)}</code>'
        f"{line}</span>{extra}{tag}</summary>"
    )
    return (
        f'<details class="frame {css}"{" open" if open_ else ""}>{summary}'
        f"{_context(frame)}</details>"
    )


def _context(frame: dict[str, Any]) -> str:
    current = frame.get("context_line")
    if not isinstance(current, str):
        return '<p class="muted frame-nosource">No source context.</p>'
    pre = [x for x in frame.get("pre_context") or [] if isinstance(x, str)]
    post = [x for x in frame.get("post_context") or [] if isinstance(x, str)]
    lineno = frame.get("lineno")
    start = lineno - len(pre) if isinstance(lineno, int) and lineno - len(pre) > 0 else 1
    items = [f"<li>{esc(text)}</li>" for text in pre]
    items.append(f'<li class="current">{esc(current)}</li>')
    items.extend(f"<li>{esc(text)}</li>" for text in post)
    return f'<ol class="context" start="{start}">{"".join(items)}</ol>'
