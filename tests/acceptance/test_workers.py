"""Workers sharing a database: shutdown hands runs back; concurrent workers never double-run."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from durable import RunStatus, step, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio


@step
async def long_task(seconds: float) -> str:
    """Slow on its first execution (the one the shutdown interrupts), quick after."""
    CALLS["long_task.started"] += 1
    try:
        if CALLS["long_task.started"] == 1:
            await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        CALLS["long_task.cancelled"] += 1
        raise
    CALLS["long_task.finished"] += 1
    return f"done after {CALLS['long_task.started']} starts"


@workflow
async def long_running(seconds: float) -> str:
    return await long_task(seconds)


@step
async def stage_one(n: int) -> int:
    CALLS[support.run_key("stage_one")] += 1
    await anyio.sleep(0.005)
    return n + 1


@step
async def stage_two(n: int) -> int:
    CALLS[support.run_key("stage_two")] += 1
    await anyio.sleep(0.005)
    return n * 10


@workflow
async def two_stages(n: int) -> int:
    return await stage_two(await stage_one(n))


async def test_shutdown_hands_in_flight_runs_back(
    make_engine: EngineFactory, database_url: str
) -> None:
    # An hour-long step and an hour-long lease: the exit ends the step after the grace
    # period, and the next worker can only have the run because the lease was handed back.
    first = make_engine(long_running, shutdown_grace_seconds=0.2, lease_seconds=3600)
    async with first:
        handle = await first.start(long_running, 3600.0)
        await support.wait_until(lambda: CALLS["long_task.started"] == 1, what="the step to start")
        assert await handle.status() == RunStatus.RUNNING

    assert CALLS["long_task.cancelled"] == 1
    assert CALLS["long_task.finished"] == 0
    row = await support.fetch_row(
        database_url,
        "SELECT status, lease_owner, wake_at <= durable.now() AS due FROM durable.runs"
        " WHERE id = $1",
        handle.run_id,
    )
    assert row is not None
    assert row["status"] == "pending"
    assert row["lease_owner"] is None
    assert row["due"] is True
    assert await support.count_rows(database_url, "SELECT count(*) FROM durable.steps") == 0

    async with make_engine(long_running) as second:
        assert await second.handle(handle.run_id).result(timeout=30) == "done after 2 starts"
        detail = await second.get_run(handle.run_id)
    assert detail.status == RunStatus.COMPLETED
    assert detail.attempt == 2
    assert [(s.cursor_key, s.status) for s in detail.steps] == [("step:long_task#0", "completed")]
    assert CALLS["long_task.finished"] == 1


async def test_shutdown_lets_a_short_step_finish_within_the_grace_period(
    make_engine: EngineFactory, database_url: str
) -> None:
    engine = make_engine(long_running, shutdown_grace_seconds=3.0)
    async with engine:
        handle = await engine.start(long_running, 0.3)
        await support.wait_until(lambda: CALLS["long_task.started"] == 1, what="the step to start")
    assert CALLS["long_task.finished"] == 1
    assert CALLS["long_task.cancelled"] == 0
    row = await support.fetch_row(
        database_url, "SELECT status, output FROM durable.runs WHERE id = $1", handle.run_id
    )
    assert row is not None
    assert row["status"] == "completed"
    assert row["output"] == '"done after 1 starts"'


async def test_two_workers_complete_every_run_exactly_once(make_engine: EngineFactory) -> None:
    runs = 40
    async with (
        make_engine(two_stages, concurrency=4) as one,
        make_engine(two_stages, concurrency=4) as two,
    ):
        handles = [await one.start(two_stages, n) for n in range(runs)]
        with anyio.fail_after(15):
            results = [await h.result(timeout=10) for h in handles]
        assert results == [(n + 1) * 10 for n in range(runs)]
        details = [await two.get_run(h.run_id) for h in handles]

    for handle, detail in zip(handles, details, strict=True):
        assert CALLS[("stage_one", handle.run_id)] == 1
        assert CALLS[("stage_two", handle.run_id)] == 1
        assert detail.status == RunStatus.COMPLETED
        assert detail.attempt == 1  # claimed once: no worker took a run another held
        assert [s.cursor_key for s in detail.steps] == ["step:stage_one#0", "step:stage_two#0"]
    assert sum(CALLS[k] for k in CALLS if k[0] == "stage_one") == runs


@workflow(name="tests.workers.tagged")
async def tagged(tag: str) -> str:
    return tag


async def test_a_run_whose_finish_is_on_the_wire_does_not_hold_its_slot(
    make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one slot, the next run executes while the first run's finish is still held on
    the wire: its code has ended, so the claim overlaps that write."""
    held, release = anyio.Event(), anyio.Event()
    async with make_engine(tagged, concurrency=1) as engine:
        finishes = engine.runtime.writer.finishes
        write = finishes.write

        async def held_first(finish: Any) -> bool:
            if not held.is_set():
                held.set()
                await release.wait()
            return await write(finish)

        monkeypatch.setattr(finishes, "write", held_first)
        first = await engine.start(tagged, "first")
        await held.wait()
        second = await engine.start(tagged, "second")
        with anyio.fail_after(10):
            assert await second.result() == "second"  # ran while the first was held
        assert await first.status() == RunStatus.RUNNING
        release.set()
        assert await first.result(timeout=10) == "first"


async def test_a_claim_answered_as_the_worker_stops_is_handed_back(
    make_engine: EngineFactory, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop can arrive after a claim committed but before its answer is read. The run
    it took is handed back at once, not left leased (here for an hour) to a gone worker."""
    stops: list[asyncio.Task[None]] = []
    async with make_engine(tagged, lease_seconds=3600) as engine:
        assert engine.worker is not None
        assert engine.worker.poller is not None
        poller, claim = engine.worker.poller, engine.runtime.store.claim

        async def answered_after_the_stop(*args: Any) -> list[Any]:
            rows = await claim(*args)
            if rows and not stops:
                stops.append(asyncio.create_task(poller.stop()))
                # The stop begins while this answer is still "on the wire".
                await anyio.lowlevel.checkpoint()
            return rows

        monkeypatch.setattr(engine.runtime.store, "claim", answered_after_the_stop)
        handle = await engine.start(tagged, "late")
        await support.wait_until(lambda: bool(stops), what="a claim to commit")
        await stops[0]
    row = await support.fetch_row(
        database_url, "SELECT status, lease_owner FROM durable.runs WHERE id = $1", handle.run_id
    )
    assert row is not None
    assert (row["status"], row["lease_owner"]) == ("pending", None)
    async with make_engine(tagged) as second:
        assert await second.handle(handle.run_id).result(timeout=30) == "late"


async def test_a_claim_unanswered_for_the_whole_grace_period_does_not_hold_the_stop(
    make_engine: EngineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = anyio.Event()
    engine = make_engine(tagged, shutdown_grace_seconds=0.1)
    with anyio.fail_after(30):  # a hang guard: the stop waits at most the grace period
        async with engine:
            claim = engine.runtime.store.claim

            async def never_answered(*args: Any) -> list[Any]:
                await claim(*args)
                sent.set()
                await anyio.sleep_forever()
                raise AssertionError("unreachable")

            monkeypatch.setattr(engine.runtime.store, "claim", never_answered)
            handle = await engine.start(tagged, "lost answer")
            await sent.wait()
    # Its lease expires like a killed worker's: the run is still there, not finished.
    async with make_engine(tagged, worker=False) as observer:
        assert await observer.handle(handle.run_id).status() == RunStatus.RUNNING
