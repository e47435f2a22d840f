"""The viewer's chart: a range fitted to the data, text never inside a stretched SVG."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posthog_otel.sink import EventFilter, EventStore
from posthog_otel.sink.chart import BUCKETS, bucket_plan, render_chart
from posthog_otel.sink.records import KIND_EVENT, Record

NOW = 1_767_323_045.0


@given(
    first=st.floats(min_value=1e9, max_value=2e9),
    length=st.floats(min_value=0, max_value=400 * 86400),
)
def test_auto_range_covers_the_data_in_round_buckets(first: float, length: float) -> None:
    plan = bucket_plan("auto", first, first + length, now=NOW)
    assert plan.start <= first
    assert plan.end > first + length
    assert 12 <= plan.buckets <= BUCKETS + 1
    assert plan.bucket_seconds in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5) or plan.bucket_seconds >= 1


@pytest.mark.parametrize("name", ["15m", "1h", "6h", "24h", "7d", "all"])
def test_named_ranges_end_now(name: str) -> None:
    plan = bucket_plan(name, NOW - 5000, NOW - 10, now=NOW)
    assert plan.end == pytest.approx(NOW)
    assert plan.buckets == BUCKETS


def _store_with(tmp_path: Path, moments: list[float]) -> EventStore:
    store = EventStore(tmp_path / "chart.sqlite3")
    records = [
        Record(kind=KIND_EVENT, endpoint="/batch/", event=f"step_{i % 3}", distinct_id="u", ts=t)
        for i, t in enumerate(moments)
    ]
    store.insert(records, received_at=NOW)
    return store


def test_a_short_burst_is_spread_over_several_bars(tmp_path: Path) -> None:
    """The demo's case: a dozen events within 80 ms, charted long after they happened."""
    moments = [NOW - 3600 + i * 0.0065 for i in range(13)]
    store = _store_with(tmp_path, moments)
    where = EventFilter(kind=KIND_EVENT)
    plan = bucket_plan("auto", *store.ts_bounds(where), now=NOW)
    series = store.counts_over_time(where, plan.start, plan.bucket_seconds, plan.buckets)
    totals = [sum(counts[i] for counts in series.values()) for i in range(plan.buckets)]
    assert sum(totals) == 13
    assert sum(1 for n in totals if n) >= 5
    html = render_chart(series, plan)
    labels = re.findall(r'<svg class="chart-x".*?</svg>', html)[0]
    assert re.findall(r"\d\d:\d\d:\d\d\.\d\d\d", labels)  # sub-second buckets show ms
    store.close()


def test_text_is_never_in_a_stretched_svg(tmp_path: Path) -> None:
    store = _store_with(tmp_path, [NOW - 30, NOW - 20, NOW - 1])
    where = EventFilter(kind=KIND_EVENT)
    plan = bucket_plan("auto", *store.ts_bounds(where), now=NOW)
    counts = store.counts_over_time(where, plan.start, plan.bucket_seconds, plan.buckets)
    html = render_chart(counts, plan)
    svgs = re.findall(r"<svg\b[^>]*>.*?</svg>", html)
    stretched = [svg for svg in svgs if 'preserveAspectRatio="none"' in svg]
    assert len(stretched) == 1 and "<rect" in stretched[0]
    assert all("<text" not in svg for svg in stretched)
    with_text = [svg for svg in svgs if "<text" in svg]
    assert len(with_text) == 2  # the y and x axes
    assert all("viewBox" not in svg.split(">")[0] for svg in with_text)
    store.close()
