"""Timers and recorded values: sleeps park or stay in-process, hold no slot, and replay
with the same deadline; ``now``/``uuid4``/``random`` are the same on every replay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

import durable
from durable import Engine, RunHandle, RunStatus, WorkflowFailed, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import OBSERVED
from tests.acceptance.waits.probes import run_row, shift_clock, wait_for_all

pytestmark = pytest.mark.anyio


@workflow
async def sleep_into_the_past() -> str:
    await durable.sleep_until(durable.now() - timedelta(hours=1))
    await durable.sleep(0)
    await durable.sleep("0s")
    return "at once"


@workflow
async def nap(seconds: float) -> float:
    started = durable.now()  # recorded: the replay after the sleep sees the same value
    await durable.sleep(seconds)
    return (durable.now() - started).total_seconds()


@workflow
async def sleep_for(duration: str | float) -> str:
    await durable.sleep(duration)
    return "woke"


@workflow
async def sleep_a_timedelta() -> str:
    await durable.sleep(timedelta(hours=5))
    return "woke"


@workflow
async def quick() -> str:
    return "quick"


@workflow
async def recorded_values() -> dict[str, Any]:
    values = {
        "now": durable.now().isoformat(),
        "uuid": str(durable.uuid4()),
        "random": durable.random(),
        "replaying": durable.current_run().replaying,
    }
    OBSERVED.append(values)
    await durable.sleep(0.2)  # parks; the next execution replays the three values
    return values


WORKFLOWS = [sleep_into_the_past, nap, sleep_for, sleep_a_timedelta, quick, recorded_values]


async def _statuses_until_finished(handle: RunHandle[Any]) -> list[str]:
    seen: list[str] = []
    while True:
        status = await handle.status()
        if not seen or seen[-1] != status:
            seen.append(status)
        if status.finished:
            return seen
        await anyio.sleep(0.005)


async def test_a_wake_time_in_the_past_continues_at_once(engine: Engine) -> None:
    handle = await engine.start(sleep_into_the_past)
    assert await handle.result(timeout=5) == "at once"
    assert (await engine.get_run(handle.run_id)).attempt == 1  # never parked


async def test_a_finished_run_shows_its_sleeps_in_its_timeline(engine: Engine) -> None:
    handle = await engine.start(sleep_into_the_past)
    assert await handle.result(timeout=5) == "at once"
    keys = [s.cursor_key for s in (await engine.get_run(handle.run_id)).steps]
    assert keys == ["now#0", "sleep#0", "sleep#1", "sleep#2"]


async def test_a_short_sleep_stays_in_the_worker(make_engine: EngineFactory) -> None:
    async with make_engine(nap, inline_wait_seconds=2.0) as engine:
        handle = await engine.start(nap, 0.3)
        seen = await _statuses_until_finished(handle)
        assert await handle.result(timeout=5) >= 0.3
        assert RunStatus.SLEEPING not in seen
        assert (await engine.get_run(handle.run_id)).attempt == 1


async def test_a_long_sleep_parks_the_run_and_resumes_it(engine: Engine, database_url: str) -> None:
    handle = await engine.start(nap, 0.4)  # above the engine's inline wait (0.05 s)
    await support.wait_for_status(handle, "sleeping")
    row = await run_row(database_url, handle.run_id)
    assert row["lease_owner"] is None
    assert row["wake_in"] <= 0.4
    assert await handle.result(timeout=5) >= 0.35  # the replayed sleep kept its deadline
    assert (await engine.get_run(handle.run_id)).attempt == 2


async def test_a_parked_sleep_wakes_on_time_with_a_slow_fallback_poll(
    make_engine: EngineFactory,
) -> None:
    # A parked timer's wake must not wait for the worker's next fallback poll: with the
    # poll an hour away, a result at all proves the worker woke at the timer.
    async with make_engine(nap, poll_interval=3600.0) as engine:
        handle = await engine.start(nap, 0.3)
        assert await handle.result(timeout=60) >= 0.3
        assert (await engine.get_run(handle.run_id)).attempt == 2  # it did park


async def test_a_replayed_sleep_keeps_its_recorded_deadline(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with make_engine(*WORKFLOWS, worker="manual") as engine:
        worker = engine.worker
        assert worker is not None
        handle = await engine.start(sleep_for, "1h")
        assert await worker.claim_once() == 1
        assert await handle.status() == RunStatus.SLEEPING
        row = await run_row(database_url, handle.run_id)
        recorded = (await engine.get_run(handle.run_id)).steps[0]
        assert recorded.cursor_key == "sleep#0"
        assert abs(float(recorded.output) - row["wake_at"].timestamp()) < 0.01

        await shift_clock(engine, 3600 - 5)  # not quite there
        assert await worker.claim_once() == 0
        assert await handle.status() == RunStatus.SLEEPING

        await shift_clock(engine, 10)
        assert await worker.claim_once() == 1
        assert await handle.result(timeout=5) == "woke"


async def test_duration_strings_set_the_wake_time(engine: Engine, database_url: str) -> None:
    expected = {
        "30s": 30,
        "5m": 300,
        "2h": 7200,
        "3d": 3 * 86400,
        "1w": 7 * 86400,
        "2 days 12 hours": 2.5 * 86400,
        "1h30m": 5400,
        "90": 90,
    }
    handles = {text: await engine.start(sleep_for, text) for text in expected}
    handles_extra = [await engine.start(sleep_for, 45.5), await engine.start(sleep_a_timedelta)]
    await wait_for_all([*handles.values(), *handles_extra], "sleeping")

    for text, seconds in expected.items():
        row = await run_row(database_url, handles[text].run_id)
        assert seconds - 5 < row["wake_in"] <= seconds, text
    assert 40 < (await run_row(database_url, handles_extra[0].run_id))["wake_in"] <= 45.5
    assert (await run_row(database_url, handles_extra[1].run_id))["wake_in"] > 5 * 3600 - 5


async def test_a_bad_duration_fails_with_a_clear_error(engine: Engine) -> None:
    handle = await engine.start(sleep_for, "3 fortnights")
    with pytest.raises(WorkflowFailed) as caught:
        await handle.result(timeout=5)
    assert caught.value.error.type == "builtins.ValueError"
    assert "invalid duration '3 fortnights'" in caught.value.error.message
    assert "'3d'" in caught.value.error.message  # says what is accepted

    with pytest.raises(ValueError, match="invalid duration"):
        await durable.sleep("soon")  # checked before anything else, even outside a workflow
    with pytest.raises(ValueError, match="must not be negative"):
        await durable.sleep(-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        await durable.sleep_until(datetime(2030, 1, 1))


async def test_sleeping_runs_hold_no_worker_slot(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with make_engine(sleep_for, quick, concurrency=2) as engine:
        sleepers = [await engine.start(sleep_for, "1h") for _ in range(5)]
        await wait_for_all(sleepers, "sleeping")

        # Five sleeping runs, two slots: a run at all proves the sleepers hold none.
        assert await (await engine.start(quick)).result(timeout=30) == "quick"
        worker = engine.worker
        assert worker is not None
        await support.wait_until(lambda: not worker.active, timeout=1, what="an idle worker")
        held = await support.count_rows(
            database_url, "SELECT count(*) FROM durable.runs WHERE lease_owner IS NOT NULL"
        )
        assert held == 0
        for handle in sleepers:
            assert await handle.status() == RunStatus.SLEEPING


async def test_now_uuid4_and_random_are_the_same_on_replay(engine: Engine) -> None:
    before = datetime.now(UTC)
    handle = await engine.start(recorded_values)
    result = await handle.result(timeout=5)

    assert len(OBSERVED) == 2  # the first execution and the replay after the sleep
    first, replay = OBSERVED
    assert first["replaying"] is False
    assert replay["replaying"] is True
    for key in ("now", "uuid", "random"):
        assert first[key] == replay[key] == result[key], key
    assert abs((datetime.fromisoformat(result["now"]) - before).total_seconds()) < 5
    assert uuid.UUID(result["uuid"]).version == 4
    assert 0 <= result["random"] < 1

    keys = [s.cursor_key for s in (await engine.get_run(handle.run_id)).steps]
    assert keys == ["now#0", "uuid4#0", "random#0", "sleep#0"]


async def test_recorded_values_outside_a_workflow_are_plain() -> None:
    assert isinstance(durable.now(), datetime)
    assert durable.uuid4() != durable.uuid4()
    assert 0 <= durable.random() < 1


async def test_a_clock_sync_does_not_undo_a_later_reading_of_the_database_clock(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim answered while a clock sync is on the wire saw the database clock after the
    sync's reading (here moved a minute ahead, as a test's shifted clock does): the sync
    must not set the estimate back behind it, or due timers would look a minute away."""
    runtime = engine.runtime
    read_clock = runtime.store.db_now
    claimed_at: list[datetime] = []

    async def clock_then_a_claim() -> datetime:
        reading = await read_clock()
        claimed_at.append(reading + timedelta(minutes=1))
        runtime.caught_up(claimed_at[0])  # the claim's answer lands before the sync's
        return reading

    monkeypatch.setattr(runtime.store, "db_now", clock_then_a_claim)
    await runtime.sync_clock()
    assert runtime.clock() >= claimed_at[0].timestamp()
