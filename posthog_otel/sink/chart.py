"""Counts per event name over time, drawn as an inline SVG stacked bar chart (no libraries).

The time range comes from the data by default (``auto``): the buckets cover the first to the
last matching event with a round bucket size (10 ms, 20 ms, 50 ms … 1 s … 1 day), so a short session fills
the chart instead of sitting in one bar at the edge of a fixed window. The named ranges
(``15m`` … ``7d``, ``all``) end now.

Only the bars are drawn in a stretched SVG (``preserveAspectRatio="none"``); the axis labels
live in SVGs without a ``viewBox``, placed in percent of their box, so text keeps its CSS size
at any width. Colours come from CSS classes (``c0`` … ``c8``) defined in the viewer's
stylesheet, so the SVG needs no inline styles and the page's Content-Security-Policy can
forbid them.

Usage::

    plan = bucket_plan("auto", first_ts, last_ts)
    series = store.counts_over_time(where, plan.start, plan.bucket_seconds, plan.buckets)
    html = render_chart(series, plan)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from html import escape

__all__ = ["RANGES", "BucketPlan", "bucket_plan", "render_chart"]

# range name -> seconds; "auto" covers the matching events, "all" spans from the first
# matching event to now
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
_MIN_AUTO_BUCKETS = 12
_STEPS = (
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
    3600.0, 7200.0, 10800.0, 21600.0, 43200.0, 86400.0, 172800.0, 604800.0, 2592000.0,
)  # fmt: skip
_TOP = 8
_SLOT = 10  # bar slot width in the bars' viewBox units
_BAR = 8


@dataclass(frozen=True)
class BucketPlan:
    """Where the chart starts, how long one bar is, and how many bars there are."""

    start: float
    bucket_seconds: float
    buckets: int

    @property
    def end(self) -> float:
        return self.start + self.bucket_seconds * self.buckets


def bucket_plan(
    range_name: str,
    first_ts: float | None,
    last_ts: float | None = None,
    now: float | None = None,
) -> BucketPlan:
    """The buckets for a range name: from the data for ``auto``, else ending at ``now``."""
    now = time.time() if now is None else now
    if range_name not in RANGES:
        range_name = "auto"
    if range_name == "auto":
        if first_ts is None:
            range_name = "15m"
        else:
            return _fit(first_ts, last_ts if last_ts is not None else first_ts)
    span = RANGES[range_name]
    if span is None:  # "all"
        span = max(now - (first_ts if first_ts is not None else now - 3600.0), 60.0)
    bucket = span / BUCKETS
    return BucketPlan(now - bucket * BUCKETS, bucket, BUCKETS)


def _fit(first: float, last: float) -> BucketPlan:
    """Round buckets covering ``first`` … ``last``, the data centred in at least a few bars."""
    first, last = min(first, last), max(first, last)
    span = last - first
    fitting = (s for s in _STEPS if span / s < BUCKETS)
    step = next(fitting, _STEPS[-1]) if span > 0 else 1.0  # one moment: 1 s bars around it
    start = math.floor(first / step) * step
    used = int((last - start) / step) + 1
    while start + used * step <= last:  # float steps: the last event inside the last bar
        used += 1
    buckets = max(used, _MIN_AUTO_BUCKETS)
    start -= ((buckets - used) // 2) * step
    return BucketPlan(start, step, buckets)


def render_chart(series: dict[str, list[int]], plan: BucketPlan) -> str:
    """The chart's HTML: bars, axes and a legend with totals (or a short note when empty)."""
    named = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0]))
    if not named:
        return (
            '<p class="muted chart-empty">No PostHog events in this time range '
            "(spans and logs are listed, not charted).</p>"
        )
    shown = named[:_TOP]
    rest = named[_TOP:]
    buckets = plan.buckets
    if rest:
        other = [sum(counts[i] for _, counts in rest) for i in range(buckets)]
        shown.append((f"{len(rest)} other events", other))
    totals = [sum(counts[i] for _, counts in shown) for i in range(buckets)]
    peak = max(max(totals), 2)
    peak += peak % 2  # even, so the middle gridline is a whole number
    width = buckets * _SLOT
    bars = [
        f'<svg class="chart" viewBox="0 0 {width} 100" preserveAspectRatio="none" '
        'role="img" aria-label="events per name over time">'
    ]
    for grid_y in (0, 50, 100):
        bars.append(
            f'<line class="grid" x1="0" x2="{width}" y1="{grid_y}" y2="{grid_y}" '
            'vector-effect="non-scaling-stroke"/>'
        )
    for i in range(buckets):
        x = i * _SLOT + (_SLOT - _BAR) / 2
        y = 100.0
        when = _clock(plan.start + i * plan.bucket_seconds, plan)
        for colour, (name, counts) in enumerate(shown):
            count = counts[i]
            if not count:
                continue
            height = 100.0 * count / peak
            y -= height
            bars.append(
                f'<rect class="c{colour}" x="{x:.1f}" y="{y:.2f}" width="{_BAR}" '
                f'height="{height:.2f}"><title>{escape(name)}: {count} at {when}</title></rect>'
            )
    bars.append("</svg>")
    y_axis = (
        '<svg class="chart-y" aria-hidden="true">'
        f'<text class="axis" x="100%" y="0" dominant-baseline="hanging" text-anchor="end">'
        f"{peak}</text>"
        f'<text class="axis" x="100%" y="50%" dominant-baseline="central" text-anchor="end">'
        f"{peak // 2}</text>"
        '<text class="axis" x="100%" y="100%" text-anchor="end">0</text></svg>'
    )
    middle = plan.start + plan.bucket_seconds * (buckets // 2)
    x_axis = (
        '<svg class="chart-x" aria-hidden="true">'
        f'<text class="axis" x="0" y="13" text-anchor="start">{_clock(plan.start, plan)}</text>'
        f'<text class="axis" x="50%" y="13" text-anchor="middle">{_clock(middle, plan)}</text>'
        f'<text class="axis" x="100%" y="13" text-anchor="end">{_clock(plan.end, plan)}</text>'
        "</svg>"
    )
    parts = [
        f'<div class="chart-plot" data-bucket-seconds="{plan.bucket_seconds:g}">',
        y_axis,
        *bars,
        '<span class="chart-corner"></span>',
        x_axis,
        "</div>",
        '<ul class="legend">',
    ]
    for colour, (name, counts) in enumerate(shown):
        parts.append(
            f'<li><svg class="swatch" viewBox="0 0 10 10"><rect class="c{colour}" width="10" '
            f'height="10"/></svg><span class="legend-name">{escape(name)}</span> '
            f'<span class="muted">{sum(counts)}</span></li>'
        )
    parts.append("</ul>")
    return "".join(parts)


def _clock(moment: float, plan: BucketPlan) -> str:
    step = plan.bucket_seconds
    whole = plan.end - plan.start
    if step >= 43200:
        fmt = "%b %d"
    elif whole >= 86400:
        fmt = "%a %H:%M"
    elif step < 1:
        whole, millis = divmod(round(moment * 1000), 1000)
        return time.strftime("%H:%M:%S", time.localtime(whole)) + f".{int(millis):03d}"
    elif step < 60:
        fmt = "%H:%M:%S"
    else:
        fmt = "%H:%M"
    return time.strftime(fmt, time.localtime(moment))
