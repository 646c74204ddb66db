"""``durable.poll``: recorded checks, parked waits between them, a timeout, fast_forward."""

from __future__ import annotations

import functools

import pytest

import durable
from durable import ForwardKind, PollResult, RunStatus, step, workflow
from durable.testing import Environment
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio


@step
async def report_ready() -> str | None:
    CALLS["report_ready"] += 1
    return "s3://reports/42.csv" if CALLS["report_ready"] >= 3 else None


@workflow(name="poll.report")
async def wait_for_report() -> PollResult[str]:
    return await durable.poll(report_ready, interval="1h", timeout="1d")


async def never_ready(label: str) -> None:
    CALLS[label] += 1


@workflow(name="poll.never")
async def gives_up() -> dict[str, object]:
    result = await durable.poll(
        functools.partial(never_ready, "never"), interval="10m", timeout="25m", name="never"
    )
    return {"ok": result.ok, "timed_out": result.timed_out, "checks": result.checks}


@workflow(name="poll.bad")
async def bad_poll() -> list[str]:
    errors = []
    for options in ({"interval": 0}, {"interval": "soon"}, {"interval": "1m", "timeout": -1}):
        try:
            await durable.poll(report_ready, **options)  # type: ignore[arg-type]
        except ValueError as exc:
            errors.append(str(exc).split(" must")[0].split(":")[0])
    return errors


WORKFLOWS = [wait_for_report, gives_up, bad_poll]


async def test_a_poll_succeeds_on_its_third_check_across_hour_long_intervals() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(wait_for_report)
        await env.run_until_idle(skip_timers=False)
        assert CALLS["report_ready"] == 1
        assert await handle.status() == RunStatus.SLEEPING  # parked: no slot held
        await env.advance("1h")
        assert CALLS["report_ready"] == 2
        await env.advance("1h")
        result = await handle.result(timeout=5)
        detail = await env.engine.get_run(handle.run_id)

    assert result == PollResult("s3://reports/42.csv", False, 3)
    assert CALLS["report_ready"] == 3  # each replay returned the recorded checks
    checks = [s for s in detail.steps if s.kind == "step"]
    assert [(s.cursor_key, s.output) for s in checks] == [
        ("step:report_ready#0", None),
        ("step:report_ready#1", None),
        ("step:report_ready#2", "s3://reports/42.csv"),
    ]


async def test_a_poll_times_out_after_a_last_check_at_the_deadline() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(gives_up)
        await env.run_until_idle()  # every wait between checks is a timer
        assert await handle.result(timeout=5) == {"ok": False, "timed_out": True, "checks": 4}
    assert CALLS["never"] == 4  # at 0, 10 and 20 minutes, and at the 25-minute deadline


async def test_fast_forward_runs_the_next_check_at_once() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(wait_for_report)
        await env.run_until_idle(skip_timers=False)
        assert (await env.engine.fast_forward(handle.run_id)).kind == ForwardKind.WOKEN
        await env.run_until_idle(skip_timers=False)
        assert CALLS["report_ready"] == 2
        assert await handle.status() == RunStatus.SLEEPING


async def test_bad_intervals_are_refused_and_nothing_runs() -> None:
    async with Environment(workflows=WORKFLOWS) as env:
        handle = await env.start(bad_poll)
        await env.run_until_idle()
        errors = await handle.result(timeout=5)
    assert errors == ["the poll interval", "the poll interval", "the poll timeout"]
    assert CALLS["report_ready"] == 0
    with pytest.raises(RuntimeError, match="inside a @workflow"):
        await durable.poll(report_ready, interval=1)
