"""What the templates draw, computed in Python: times, JSON, the waterfall, the chart.

The templates only place these values (autoescaped); no markup is built here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from durable._foundation.durations import format_duration as duration
from durable._foundation.views import AttemptInfo, StepInfo
from durable._workflow.children import child_run_id
from durable.dashboard._queries import Bucket

__all__ = [
    "AttemptBar",
    "Bar",
    "Chart",
    "WaterfallRow",
    "ago",
    "chart",
    "pretty_json",
    "trace_url",
    "waterfall",
    "when",
]

JSON_LIMIT = 64 << 10  # characters of one value shown in full; beyond it, a cut with a note


def when(value: datetime | None) -> str:
    """A UTC time to the second, or ``-``."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def ago(value: datetime | None, now: datetime) -> str:
    """``5m10s ago`` or ``in 3h02m``."""
    if value is None:
        return "-"
    seconds = (now - value).total_seconds()
    return f"{duration(seconds)} ago" if seconds >= 0 else f"in {duration(-seconds)}"


def pretty_json(value: Any) -> str:
    """Indented JSON (a short value on one line), cut at ``JSON_LIMIT`` characters."""
    # Compact first: the C encoder is several times faster, and a 1,000-call timeline
    # holds mostly small outputs.
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > 60:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > JSON_LIMIT:
        return text[:JSON_LIMIT] + f"\n… ({len(text) - JSON_LIMIT} more characters)"
    return text


def trace_url(template: str | None, trace_id: str | None) -> str | None:
    """The trace link from ``template`` (``{trace_id}`` replaced); only http(s) links."""
    if not template or not trace_id:
        return None
    url = template.replace("{trace_id}", trace_id)
    return url if url.startswith(("http://", "https://")) else None


@dataclass(frozen=True, slots=True)
class AttemptBar:
    """One attempt of a call on the waterfall (a retried call has one bar per attempt)."""

    attempt: AttemptInfo
    left: float
    width: float
    took: str


@dataclass(frozen=True, slots=True)
class WaterfallRow:
    """One call on the waterfall: offset and width in percent of the run's span."""

    step: StepInfo
    left: float
    width: float
    took: str
    retried: bool
    child: UUID | None = None
    """The child run a ``child:`` call started."""
    attempts: list[AttemptBar] = field(default_factory=list)
    """A bar per attempt, oldest first (one for a call that did not retry)."""


def waterfall(
    run_id: UUID, steps: Sequence[StepInfo], start: datetime | None, end: datetime | None
) -> list[WaterfallRow]:
    """Bars for ``steps`` laid on the span from ``start`` to ``end`` (or the last step)."""
    moments = [m for s in steps for m in (s.started_at, s.finished_at) if m is not None]
    begin = start or (min(moments) if moments else None)
    finish = max([end, *moments] if end else moments) if moments else end
    if begin is None or finish is None:
        return [WaterfallRow(s, 0.0, 100.0, "-", len(s.attempts) > 1) for s in steps]
    total = max((finish - begin).total_seconds(), 1e-3)

    def place(start: datetime | None, end: datetime | None) -> tuple[float, float, str]:
        first = start or end or begin
        last = end or finish
        left = min(max((first - begin).total_seconds() / total * 100, 0.0), 99.5)
        width = max((last - first).total_seconds() / total * 100, 0.5)
        took = duration((last - first).total_seconds()) if start else "-"
        return round(left, 2), round(min(width, 100 - left), 2), took

    rows = []
    for s in steps:
        child = child_run_id(run_id, s.cursor_key) if s.kind == "child" else None
        bars = [AttemptBar(a, *place(a.started_at, a.finished_at)) for a in s.attempts]
        retried = len(s.attempts) > 1 or s.attempt > 1
        rows.append(WaterfallRow(s, *place(s.started_at, s.finished_at), retried, child, bars))
    return rows


@dataclass(frozen=True, slots=True)
class Bar:
    """One bucket of the chart: bar heights and the failure-rate point, in SVG units."""

    x: float
    width: float
    ok_y: float
    ok_height: float
    failed_y: float
    failed_height: float
    rate_y: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """An inline SVG chart of runs per bucket (stacked ok/failed) and the failure rate."""

    width: int
    height: int
    bars: list[Bar]
    peak: int
    rate_points: str
    total: int
    failed: int
    first_label: str
    last_label: str


def chart(
    buckets: Sequence[Bucket],
    since: datetime,
    now: datetime,
    slots: int,
    width: int = 720,
    height: int = 160,
) -> Chart:
    """Lay ``buckets`` on ``slots`` equal slots from ``since`` to ``now``."""
    span = max((now - since).total_seconds(), 1.0)
    step = span / slots
    counts = [{"total": 0, "failed": 0} for _ in range(slots)]
    for b in buckets:
        i = min(max(int((b.start - since).total_seconds() // step), 0), slots - 1)
        counts[i]["total"] += b.total
        counts[i]["failed"] += b.failed
    peak = max((c["total"] for c in counts), default=0) or 1
    slot_w = width / slots
    bars, points = [], []
    for i, c in enumerate(counts):
        failed_h = c["failed"] / peak * height
        ok_h = (c["total"] - c["failed"]) / peak * height
        rate = c["failed"] / c["total"] if c["total"] else 0.0
        x = i * slot_w
        rate_y = height - rate * height
        start = since + timedelta(seconds=i * step)
        bars.append(
            Bar(
                x=round(x + 1, 1),
                width=round(max(slot_w - 2, 1), 1),
                ok_y=round(height - ok_h - failed_h, 1),
                ok_height=round(ok_h, 1),
                failed_y=round(height - failed_h, 1),
                failed_height=round(failed_h, 1),
                rate_y=round(rate_y, 1),
                label=f"{when(start)}: {c['total']} runs, {c['failed']} failed ({rate:.0%})",
            )
        )
        if c["total"]:  # an empty bucket has no rate (not a rate of 0)
            points.append(f"{x + slot_w / 2:.1f},{rate_y:.1f}")
    return Chart(
        width=width,
        height=height,
        bars=bars,
        peak=peak if any(counts) else 0,
        rate_points=" ".join(points),
        total=sum(c["total"] for c in counts),
        failed=sum(c["failed"] for c in counts),
        first_label=when(since),
        last_label=when(now),
    )
