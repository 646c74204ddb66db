"""Cron schedules: one run per tick across several workers, policies, time zones, retention.

Time moves with the shared database clock (``durable.now()``): a test shifts it and lets
every worker's schedule loop race on the tick; the compare-and-set lets exactly one win.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import asyncpg
import pytest

import durable
from durable import (
    Engine,
    InvalidSchedule,
    RunStatus,
    ScheduleNotFound,
    UnknownWorkflow,
    workflow,
)
from durable._foundation.cron import CronSpec, plan_ticks
from durable.testing import database_now, shift_clock
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio


@workflow(name="tests.every_minute", schedule="* * * * *")
async def every_minute() -> str:
    CALLS["every_minute"] += 1
    return "tick"


@workflow(name="tests.report")
async def report(region: str = "eu", *, full: bool = False) -> str:
    CALLS[("report", region, full)] += 1
    return f"{region}:{full}"


@workflow(name="tests.hold")
async def hold() -> str:
    """Stays unfinished until signalled: what the overlap policies look at."""
    result: str = await durable.wait_for_signal("go")
    return result


WORKFLOWS = [report, hold]


async def _advance(engines: Sequence[Engine], seconds: float) -> None:
    """Shift the shared clock, then let every engine's scheduler race on the due ticks."""
    await shift_clock(engines[0], seconds, *engines[1:])
    async with anyio.create_task_group() as tg:
        for engine in engines:
            assert engine.scheduler is not None
            tg.start_soon(engine.scheduler.fire_due)


async def _runs(engine: Engine, schedule: str) -> list[Any]:
    page = await engine.list_runs(tag=f"schedule:{schedule}", limit=1000)
    return page.items


async def _wait_finished(engine: Engine, schedule: str, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        runs = await _runs(engine, schedule)
        if len(runs) >= count and all(r.status.finished for r in runs):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{schedule}: {[r.status for r in runs]}, wanted {count} done")
        await anyio.sleep(0.02)


async def _keys(database_url: str, schedule: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT idempotency_key FROM durable.runs WHERE $1 = ANY(tags) ORDER BY created_at",
            f"schedule:{schedule}",
        )
    finally:
        await conn.close()
    return [r["idempotency_key"] for r in rows]


# -- exactly once per tick ---------------------------------------------------------------


async def test_three_workers_fire_each_tick_once_over_a_simulated_hour(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with (
        make_engine(every_minute) as a,
        make_engine(every_minute) as b,
        make_engine(every_minute) as c,
    ):
        info = await a.schedules.get("tests.every_minute")
        assert info.source == "decorator"
        assert info.cron == "* * * * *"
        first = info.next_fire_at
        assert first is not None
        for _ in range(60):
            await _advance([a, b, c], 60)
            await _wait_finished(a, "tests.every_minute", 0)
        # The real clock keeps moving under the shifted one: when it crosses a minute during
        # the test, one more tick is due. Count the ticks due at the end, fire any the
        # background loops have not reached yet, and expect each exactly once.
        end = await database_now(a)
        due = 60 + sum(1 for i in range(60, 62) if first + timedelta(minutes=i) <= end)
        assert a.scheduler is not None
        await a.scheduler.fire_due()
        await _wait_finished(a, "tests.every_minute", due)
        runs = await _runs(a, "tests.every_minute")
        keys = await _keys(database_url, "tests.every_minute")
    assert len(runs) == due
    assert CALLS["every_minute"] == due
    ticks = [first + timedelta(minutes=i) for i in range(due)]
    assert keys == [f"schedule:tests.every_minute:{t.isoformat()}" for t in ticks]
    assert all(r.status == RunStatus.COMPLETED for r in runs)


async def test_the_background_loops_fire_without_help(engine: Engine) -> None:
    await engine.schedules.create("bg", report, "* * * * *", args=["us"])
    await shift_clock(engine, 61)
    assert engine.scheduler is not None
    engine.scheduler.wake()
    await _wait_finished(engine, "bg", 1)
    # The clock runs on in real time: a minute boundary crossed meanwhile fires that
    # minute's tick too. Each tick's run executes once (its run exists before its body).
    calls = CALLS[("report", "us", False)]
    assert 1 <= calls <= len(await _runs(engine, "bg"))


# -- definitions ---------------------------------------------------------------------------


@pytest.mark.parametrize("cron", ["0 25 * * *", "every day", "* * *", ""])
def test_an_invalid_cron_fails_at_decoration(cron: str) -> None:
    with pytest.raises(InvalidSchedule, match="invalid cron expression"):

        @workflow(name=f"tests.bad_cron_{cron}", schedule=cron)
        async def bad() -> None: ...


def test_an_invalid_timezone_fails_at_decoration() -> None:
    with pytest.raises(InvalidSchedule, match="unknown time zone 'Mars/Olympus'"):

        @workflow(name="tests.bad_zone", schedule="0 2 * * *", timezone="Mars/Olympus")
        async def bad() -> None: ...


def test_a_scheduled_workflow_must_take_no_required_arguments() -> None:
    with pytest.raises(InvalidSchedule, match="must accept no arguments"):

        @workflow(name="tests.needs_args", schedule="0 2 * * *")
        async def bad(order_id: str) -> None: ...


async def test_create_validates_everything_before_writing(engine: Engine) -> None:
    with pytest.raises(InvalidSchedule, match="invalid cron"):
        await engine.schedules.create("x", report, "61 * * * *")
    with pytest.raises(InvalidSchedule, match="unknown time zone"):
        await engine.schedules.create("x", report, "0 2 * * *", timezone="Europe/Atlantis")
    with pytest.raises(InvalidSchedule, match="overlap"):
        await engine.schedules.create("x", report, "0 2 * * *", overlap="queue")  # type: ignore[arg-type]
    with pytest.raises(InvalidSchedule, match="catch_up"):
        await engine.schedules.create("x", report, "0 2 * * *", catch_up="all")  # type: ignore[arg-type]
    with pytest.raises(InvalidSchedule, match="max_catch_up"):
        await engine.schedules.create("x", report, "0 2 * * *", max_catch_up=0)
    with pytest.raises(InvalidSchedule, match="reserved"):
        await engine.schedules.create("durable.mine", report, "0 2 * * *")
    with pytest.raises(UnknownWorkflow):
        await engine.schedules.create("x", "no.such.workflow", "0 2 * * *")
    with pytest.raises(durable.SerializationError):
        await engine.schedules.create("x", report, "0 2 * * *", args=[object()])
    assert await engine.schedules.list() == []


async def test_create_list_pause_resume_trigger_delete(engine: Engine) -> None:
    info = await engine.schedules.create(
        "nightly", report, "0 2 * * *", timezone="Europe/Paris", kwargs={"full": True}
    )
    assert info.workflow == "tests.report"
    assert info.input == {"args": [], "kwargs": {"full": True}}
    assert info.next_fire_at is not None
    local = info.next_fire_at.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (2, 0)
    assert [s.name for s in await engine.schedules.list()] == ["nightly"]

    paused = await engine.schedules.pause("nightly")
    assert paused.paused
    await shift_clock(engine, 86400 * 2)
    assert engine.scheduler is not None
    await engine.scheduler.fire_due()
    assert await _runs(engine, "nightly") == []

    resumed = await engine.schedules.resume("nightly")
    assert not resumed.paused
    assert resumed.next_fire_at is not None
    assert resumed.next_fire_at > await database_now(engine)  # missed ticks skipped

    handle = await engine.schedules.trigger("nightly")
    assert await handle.result(timeout=5) == "eu:True"
    detail = await handle.detail()
    assert detail.tags == ["schedule:nightly"]
    assert (await engine.schedules.get("nightly")).last_run_id == handle.run_id

    assert await engine.schedules.delete("nightly")
    assert not await engine.schedules.delete("nightly")
    with pytest.raises(ScheduleNotFound):
        await engine.schedules.get("nightly")
    with pytest.raises(ScheduleNotFound):
        await engine.schedules.pause("nightly")
    with pytest.raises(ScheduleNotFound):
        await engine.schedules.trigger("nightly")


async def test_create_again_replaces_the_definition(engine: Engine) -> None:
    first = await engine.schedules.create("r", report, "0 2 * * *")
    same = await engine.schedules.create("r", report, "0 2 * * *", args=["us"])
    assert same.next_fire_at == first.next_fire_at
    assert same.input == {"args": ["us"], "kwargs": {}}
    moved = await engine.schedules.create("r", report, "0 3 * * *")
    assert moved.next_fire_at != first.next_fire_at


# -- overlap -----------------------------------------------------------------------------


async def _hold_runs(engine: Engine, name: str) -> list[Any]:
    return sorted(await _runs(engine, name), key=lambda r: r.created_at)


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        await anyio.sleep(0.02)


async def _count(engine: Engine, name: str, status: str, n: int) -> None:
    async def check() -> bool:
        return sum(r.status == status for r in await _runs(engine, name)) == n

    await _until(check)


async def test_overlap_skip_starts_nothing_while_the_last_run_is_unfinished(
    engine: Engine,
) -> None:
    await engine.schedules.create("s", hold, "* * * * *")
    await _advance([engine], 60)
    await _count(engine, "s", "waiting", 1)
    await _advance([engine], 60)
    await _advance([engine], 60)
    assert len(await _runs(engine, "s")) == 1
    (run,) = await _runs(engine, "s")
    await engine.signal(run.run_id, "go", "done")
    await _count(engine, "s", "completed", 1)
    await _advance([engine], 60)
    await _count(engine, "s", "waiting", 1)
    assert len(await _runs(engine, "s")) == 2


async def test_overlap_allow_starts_every_tick(engine: Engine) -> None:
    await engine.schedules.create("a", hold, "* * * * *", overlap="allow")
    for _ in range(3):
        await _advance([engine], 60)
    await _count(engine, "a", "waiting", 3)


async def test_overlap_buffer_one_holds_one_tick_until_the_run_finishes(engine: Engine) -> None:
    await engine.schedules.create("b", hold, "* * * * *", overlap="buffer_one")
    await _advance([engine], 60)
    await _count(engine, "b", "waiting", 1)
    held_tick = (await engine.schedules.get("b")).next_fire_at
    await _advance([engine], 60)
    await _advance([engine], 60)  # a second overlapping tick is dropped, not queued
    info = await engine.schedules.get("b")
    assert info.buffered_at == held_tick
    assert len(await _runs(engine, "b")) == 1
    (first,) = await _runs(engine, "b")
    await engine.signal(first.run_id, "go", "done")
    await _count(engine, "b", "completed", 1)
    assert engine.scheduler is not None
    await _until(lambda: _fired(engine))  # the background loop starts the held tick
    runs = await _hold_runs(engine, "b")
    assert len(runs) == 2
    assert (await engine.schedules.get("b")).buffered_at is None


async def _fired(engine: Engine) -> bool:
    assert engine.scheduler is not None
    await engine.scheduler.fire_due()
    return len(await _runs(engine, "b")) == 2


# -- catch-up and jitter ---------------------------------------------------------------------


def _minute(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(second=0, microsecond=0)


async def test_skip_missed_runs_once_for_the_latest_tick(engine: Engine, database_url: str) -> None:
    info = await engine.schedules.create("m", report, "* * * * *")
    assert info.next_fire_at is not None
    looked = _minute(await database_now(engine) + timedelta(minutes=10))
    await _advance([engine], 10 * 60)  # ten ticks pass while "no worker" looked
    await _wait_finished(engine, "m", 1)
    keys = await _keys(database_url, "m")
    now = _minute(await database_now(engine))
    assert looked >= info.next_fire_at + timedelta(minutes=9)
    # One run for the ten missed ticks: the latest. The clock runs on in real time, so a
    # minute boundary crossed meanwhile may add that minute's own, regular tick.
    ticks = [datetime.fromisoformat(key.removeprefix("schedule:m:")) for key in keys]
    assert ticks[0] >= looked
    assert ticks == [ticks[0] + timedelta(minutes=n) for n in range(len(ticks))]
    assert ticks[-1] <= now
    assert len(ticks) <= 1 + (now - looked) // timedelta(minutes=1)
    assert (await engine.schedules.get("m")).next_fire_at == ticks[-1] + timedelta(minutes=1)


async def test_run_missed_runs_the_latest_ticks_up_to_the_bound(
    engine: Engine, database_url: str
) -> None:
    info = await engine.schedules.create(
        "rm", report, "* * * * *", catch_up="run_missed", max_catch_up=3, overlap="allow"
    )
    assert info.next_fire_at is not None
    looked = _minute(await database_now(engine) + timedelta(minutes=10))
    await _advance([engine], 10 * 60)
    await _wait_finished(engine, "rm", 3)
    keys = await _keys(database_url, "rm")
    now = _minute(await database_now(engine))
    # The three latest missed ticks; the clock runs on in real time, so a minute boundary
    # crossed meanwhile may add that minute's own, regular tick after them.
    ticks = sorted(datetime.fromisoformat(key.removeprefix("schedule:rm:")) for key in keys)
    assert ticks == [ticks[0] + timedelta(minutes=n) for n in range(len(ticks))]
    assert ticks[2] >= looked
    assert ticks[-1] <= now
    assert len(ticks) <= 3 + (now - looked) // timedelta(minutes=1)


async def test_jitter_delays_each_run_within_the_bound(engine: Engine, database_url: str) -> None:
    info = await engine.schedules.create("j", report, "* * * * *", jitter="45s", overlap="allow")
    assert info.jitter == 45.0
    assert info.next_fire_at is not None
    await _advance([engine], 60)
    row = await support.fetch_row(
        database_url, "SELECT created_at, wake_at FROM durable.runs WHERE 'schedule:j' = ANY(tags)"
    )
    assert row is not None
    assert timedelta(0) <= row["wake_at"] - row["created_at"] <= timedelta(seconds=45)


# -- time zones and planning (pure) -------------------------------------------------------------


def test_paris_ticks_follow_daylight_saving() -> None:
    spec = CronSpec("30 2 * * *", "Europe/Paris")
    before = datetime(2024, 3, 30, 12, 0, tzinfo=UTC)
    first = spec.next_after(before)
    second = spec.next_after(first)
    assert first == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)  # 02:30 does not exist: 03:00 CEST
    assert second == datetime(2024, 4, 1, 0, 30, tzinfo=UTC)  # 02:30 CEST


def test_plan_buffer_one_keeps_the_first_held_tick() -> None:
    spec = CronSpec("* * * * *")
    t0 = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)
    plan = plan_ticks(
        spec, now=t0 + timedelta(minutes=2, seconds=1), next_fire_at=t0, buffered_at=None,
        busy=True, overlap="buffer_one", catch_up="run_missed", max_catch_up=10,
    )  # fmt: skip
    assert plan.starts == []
    assert plan.buffered_at == t0
    assert plan.next_fire_at == t0 + timedelta(minutes=3)
    assert plan.skipped == 2


# -- retention -----------------------------------------------------------------------------------


async def test_retention_prunes_old_finished_runs_as_a_builtin_schedule(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(report, hold, retention="1h") as engine:
        info = await engine.schedules.get("durable.retention")
        assert info.source == "builtin"
        old = await engine.start(report, "old")
        await old.result(timeout=5)
        waiting = await engine.start(hold)
        await support.wait_for_status(waiting, "waiting")
        await _advance([engine], 2 * 3600)
        young = await engine.start(report, "young")
        await young.result(timeout=5)
        await _advance([engine], 600)  # the next retention tick
        remaining = {r.run_id for r in (await engine.list_runs(limit=100)).items}
        assert remaining == {waiting.run_id, young.run_id}
        with pytest.raises(InvalidSchedule):
            await engine.schedules.trigger("durable.retention")
