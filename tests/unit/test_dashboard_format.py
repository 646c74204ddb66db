"""What the dashboard computes for its templates: trace links, the waterfall, the chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from durable._foundation.views import StepInfo
from durable.dashboard._format import chart, pretty_json, trace_url, waterfall
from durable.dashboard._queries import Bucket

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _step(key: str, start: float | None, end: float, kind: str = "step") -> StepInfo:
    return StepInfo(
        cursor_key=key, kind=kind, name=key, status="completed", attempt=1,
        started_at=None if start is None else T0 + timedelta(seconds=start),
        finished_at=T0 + timedelta(seconds=end), output=None, error=None,
    )  # fmt: skip


def test_trace_links_are_http_only() -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_url("https://tempo/trace/{trace_id}", trace) == f"https://tempo/trace/{trace}"
    assert trace_url("javascript:alert('{trace_id}')", trace) is None
    assert trace_url(None, trace) is None
    assert trace_url("https://tempo/{trace_id}", None) is None


def test_the_waterfall_places_calls_on_the_run_span() -> None:
    run = uuid4()
    rows = waterfall(
        run, [_step("step:a#0", 0, 5), _step("step:b#0", 5, 10), _step("child:c#0", 8, 9, "child")],
        T0, T0 + timedelta(seconds=10),
    )  # fmt: skip
    assert [(r.left, r.width) for r in rows] == [(0.0, 50.0), (50.0, 50.0), (80.0, 10.0)]
    assert rows[0].took == "5.0s"
    assert rows[2].child is not None
    assert rows[0].child is None
    instant = waterfall(run, [_step("now#0", None, 3, "now")], T0, T0 + timedelta(seconds=10))
    assert instant[0].took == "-"
    assert instant[0].width == 0.5  # a recorded value is a sliver, not nothing


def test_the_chart_stacks_failures_and_skips_empty_rates() -> None:
    since, now = T0, T0 + timedelta(hours=1)
    buckets = [Bucket(T0 + timedelta(minutes=1), {"completed": 3, "failed": 1})]
    drawn = chart(buckets, since, now, slots=6)
    assert (drawn.total, drawn.failed, drawn.peak) == (4, 1, 4)
    first = drawn.bars[0]
    assert first.failed_height == drawn.height / 4
    assert first.ok_height == drawn.height * 3 / 4
    assert len(drawn.rate_points.split()) == 1  # only the slot that had runs
    assert "25%" in first.label


def test_pretty_json_is_compact_when_short_and_cut_when_huge() -> None:
    assert pretty_json({"a": 1}) == '{"a": 1}'
    assert "\n" in pretty_json({"key": "x" * 80})
    assert pretty_json("y" * 100_000).endswith("more characters)")
