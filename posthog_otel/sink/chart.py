"""Counts per event name over time, drawn as an inline SVG stacked bar chart (no libraries).

Colours come from CSS classes (``c0`` … ``c8``) defined in the viewer's stylesheet, so the SVG
needs no inline styles and the page's Content-Security-Policy can forbid them.

Usage::

    series = store.counts_over_time(where, start, bucket_seconds=60, buckets=30)
    html = render_chart(series, start=start, bucket_seconds=60)
"""

from __future__ import annotations

import time
from html import escape

__all__ = ["RANGES", "bucket_plan", "render_chart"]

# range name -> seconds; "all" spans from the first matching event to now, "auto" picks the
# shortest range that holds the newest matching event
RANGES: dict[str, float | None] = {
    "auto": None,
    "15m": 900.0,
    "1h": 3600.0,
    "6h": 21600.0,
    "24h": 86400.0,
    "7d": 604800.0,
    "all": None,
}
BUCKETS = 30
_TOP = 8
_WIDTH = 900
_HEIGHT = 180
_LEFT = 40
_BOTTOM = 22
_TOPPAD = 8


def bucket_plan(
    range_name: str,
    first_ts: float | None,
    last_ts: float | None = None,
    now: float | None = None,
) -> tuple[float, float]:
    """(start, bucket_seconds) for a range name; the last bucket ends at ``now``."""
    now = time.time() if now is None else now
    span = RANGES.get(range_name)
    if range_name == "auto" or range_name not in RANGES:
        age = now - last_ts if last_ts is not None else 0.0
        span = next(
            (seconds for seconds in RANGES.values() if seconds is not None and 0 <= age < seconds),
            None,
        )
    if span is None:
        span = max(now - (first_ts if first_ts is not None else now - 3600.0), 60.0)
    bucket = span / BUCKETS
    return now - bucket * BUCKETS, bucket


def render_chart(series: dict[str, list[int]], *, start: float, bucket_seconds: float) -> str:
    """The chart's HTML: an ``<svg>`` and a legend with totals (or a short note when empty)."""
    named = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0]))
    if not named:
        return (
            '<p class="muted chart-empty">No PostHog events in this time range '
            "(spans and logs are listed, not charted).</p>"
        )
    shown = named[:_TOP]
    rest = named[_TOP:]
    buckets = len(shown[0][1])
    if rest:
        other = [sum(counts[i] for _, counts in rest) for i in range(buckets)]
        shown.append((f"{len(rest)} other events", other))
    totals = [sum(counts[i] for _, counts in shown) for i in range(buckets)]
    peak = max(max(totals), 2)
    peak += peak % 2  # even, so the middle gridline is a whole number
    plot_w = _WIDTH - _LEFT - 4
    plot_h = _HEIGHT - _BOTTOM - _TOPPAD
    slot = plot_w / buckets
    bar_w = max(slot * 0.8, 1.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-label="events per name over time" preserveAspectRatio="none">'
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = _TOPPAD + plot_h * (1 - fraction)
        label = round(peak * fraction)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_WIDTH - 4}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )
    for i in range(buckets):
        x = _LEFT + i * slot + (slot - bar_w) / 2
        y = _TOPPAD + plot_h
        when = _clock(start + i * bucket_seconds, bucket_seconds)
        for colour, (name, counts) in enumerate(shown):
            count = counts[i]
            if not count:
                continue
            height = plot_h * count / peak
            y -= height
            parts.append(
                f'<rect class="c{colour}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
                f'height="{height:.1f}"><title>{escape(name)}: {count} at {when}</title></rect>'
            )
    for i in (0, buckets // 2, buckets - 1):
        x = _LEFT + i * slot + slot / 2
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{_HEIGHT - 6}" text-anchor="middle">'
            f"{_clock(start + i * bucket_seconds, bucket_seconds)}</text>"
        )
    parts.append("</svg>")
    parts.append('<ul class="legend">')
    for colour, (name, counts) in enumerate(shown):
        parts.append(
            f'<li><svg class="swatch" viewBox="0 0 10 10"><rect class="c{colour}" width="10" '
            f'height="10"/></svg><span class="legend-name">{escape(name)}</span> '
            f'<span class="muted">{sum(counts)}</span></li>'
        )
    parts.append("</ul>")
    return "".join(parts)


def _clock(moment: float, bucket_seconds: float) -> str:
    fmt = "%H:%M" if bucket_seconds < 86400 / 2 else "%b %d"
    if bucket_seconds >= 3600 and bucket_seconds < 86400 / 2:
        fmt = "%a %H:%M"
    return time.strftime(fmt, time.localtime(moment))
