"""Smaller semantics: run ids of other workflows, progress watches that end, stale worker
rows, schedules dropped from a decorator, capped events, and forks that keep events."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import asyncpg
import pytest

import durable
from durable import Engine, PayloadTooLarge, RunStatus, Workflow, step, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio


@workflow(name="tests.hygiene.first")
async def first() -> str:
    return "first"


@workflow(name="tests.hygiene.second")
async def second() -> str:
    return "second"


@step(name="tests.hygiene.mark")
async def mark(label: str) -> str:
    CALLS[("mark", label)] += 1
    return label


@workflow(name="tests.hygiene.gated")
async def gated() -> str:
    await mark("a")
    await durable.wait_for_signal("more")
    await mark("b")
    await mark("c")
    return "done"


@workflow(name="tests.hygiene.two_gates")
async def two_gates() -> str:
    await durable.wait_for_signal("more")
    await mark("b")
    await durable.wait_for_signal("end")
    return "done"


@workflow(name="tests.hygiene.publishes")
async def publishes() -> str:
    await durable.set_event("stage", "one")
    await mark("a")
    await durable.set_event("stage", "two")
    await durable.set_event("extra", 1)
    await mark("b")
    await durable.set_event("stage", "three")
    return "done"


@workflow(name="tests.hygiene.big_event")
async def big_event(size: int) -> str:
    try:
        await durable.set_event("big", "x" * size)
    except PayloadTooLarge as exc:
        return f"refused: {exc.code}"
    return "stored"


WORKFLOWS = [first, second, gated, two_gates, publishes, big_event]


async def test_a_run_id_of_another_workflow_is_refused(engine: Engine) -> None:
    handle = await engine.start(first)
    assert await handle.result(timeout=5) == "first"
    with pytest.raises(ValueError, match=r"tests\.hygiene\.first"):
        await engine.start(second, run_id=handle.run_id)
    again = await engine.start(first, run_id=handle.run_id)  # the same workflow: idempotent
    assert again.run_id == handle.run_id
    assert again.created is False
    assert (await engine.get_run(handle.run_id)).workflow == first.name


async def test_a_finished_progress_wait_stops_the_step_notifications(
    engine: Engine, database_url: str
) -> None:
    handle = await engine.start(gated)
    assert await handle.wait(step="step:tests.hygiene.mark#0", timeout=5) is True
    await support.wait_for_status(handle, "waiting")

    heard: list[str] = []
    finished = anyio.Event()

    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        run, _, what = payload.partition(" ")
        if run == str(handle.run_id):
            heard.append(what.split(" ")[0])
            if what.startswith("completed"):
                finished.set()

    conn = await asyncpg.connect(database_url)
    try:
        await conn.add_listener("durable_run", on_notify)
        await handle.signal("more")
        with anyio.fail_after(10):
            await finished.wait()  # every earlier notification of the run arrived before it
    finally:
        await conn.close()
    assert "step" not in heard, heard
    assert await handle.result(timeout=5) == "done"


async def _watch(database_url: str, run_id: uuid.UUID) -> tuple[int, bool]:
    row = await support.fetch_row(
        database_url, "SELECT watchers, watch_until FROM durable.runs WHERE id = $1", run_id
    )
    assert row is not None
    return row["watchers"], row["watch_until"] is not None


async def test_progress_watches_count_their_waiters(engine: Engine, database_url: str) -> None:
    handle = await engine.start(two_gates)
    await support.wait_for_status(handle, "waiting")
    with pytest.raises(TimeoutError):  # a waiter that gives up leaves too
        await handle.wait(signal="never", timeout=0.1)
    assert await _watch(database_url, handle.run_id) == (0, False)

    done: dict[str, bool] = {}

    async def wait(what: str, target: str) -> None:
        done[target] = await handle.wait(timeout=10, **{what: target})

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait, "step", "step:tests.hygiene.mark#0")
        tg.start_soon(wait, "signal", "end")
        for _ in range(200):
            if (await _watch(database_url, handle.run_id))[0] == 2:
                break
            await anyio.sleep(0.02)
        assert await _watch(database_url, handle.run_id) == (2, True)
        await handle.signal("more")
        await support.wait_until(lambda: "step:tests.hygiene.mark#0" in done, what="step wait")
        assert await _watch(database_url, handle.run_id) == (1, True)  # one still waits
        await handle.signal("end")
    assert done == {"step:tests.hygiene.mark#0": True, "end": True}
    assert await _watch(database_url, handle.run_id) == (0, False)


async def test_stale_worker_rows_are_removed_by_the_heartbeat(
    make_engine: EngineFactory, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO durable.workers (id, hostname, pid, concurrency, heartbeat_at)
            SELECT 'dead-' || i, 'gone', i, 1, durable.now() - interval '1 day'
            FROM generate_series(1, 100) AS i"""
        )
        await conn.execute(
            """INSERT INTO durable.workers (id, hostname, pid, concurrency)
            VALUES ('alive-elsewhere', 'there', 1, 1)"""
        )
    finally:
        await conn.close()
    async with make_engine(first, heartbeat_seconds=0.05, lease_seconds=2.0) as engine:
        sql = "SELECT count(*) FROM durable.workers WHERE id LIKE 'dead-%'"
        for _ in range(200):
            if await support.count_rows(database_url, sql) == 0:
                break
            await anyio.sleep(0.05)
        assert await support.count_rows(database_url, sql) == 0
        ids = await support.count_rows(
            database_url,
            "SELECT count(*) FROM durable.workers WHERE id IN ($1, 'alive-elsewhere')",
            engine.runtime.worker_id,
        )
        assert ids == 2
        handle = await engine.start(first)
        await handle.result(timeout=5)
        assert (await engine.get_run(handle.run_id)).version_available is True


async def _tick() -> str:
    return "tick"


SCHEDULED = Workflow(
    _tick, name="tests.hygiene.nightly", version=1, queue="default", timeout=None,
    schedule="0 2 * * *", timezone="UTC",
)  # fmt: skip
UNSCHEDULED = Workflow(
    _tick, name="tests.hygiene.nightly", version=1, queue="default", timeout=None,
    schedule=None, timezone="UTC",
)  # fmt: skip


async def test_a_schedule_removed_from_the_decorator_is_removed(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(SCHEDULED) as engine:
        info = await engine.schedules.get("tests.hygiene.nightly")
        assert info.source == "decorator"
        await engine.schedules.create("api-nightly", SCHEDULED, "0 3 * * *")
    async with make_engine(UNSCHEDULED) as engine:
        names = [s.name for s in await engine.schedules.list()]
        assert names == ["api-nightly"]  # created through the API: kept


async def test_set_event_values_are_capped_like_step_outputs(make_engine: EngineFactory) -> None:
    async with make_engine(big_event, max_output_bytes=100) as engine:
        handle = await engine.start(big_event, 200)
        assert await handle.result(timeout=5) == "refused: payload_too_large"
        assert (await engine.get_run(handle.run_id)).events == {}
        small = await engine.start(big_event, 10)
        assert await small.result(timeout=5) == "stored"


async def test_fork_copies_the_events_recorded_before_from_step(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(publishes) as engine:
        source = await engine.start(publishes)
        assert await source.result(timeout=5) == "done"
        assert (await source.detail()).events == {"stage": "three", "extra": 1}
    async with make_engine(publishes, worker=False) as client:  # nothing runs the forks
        fork = await client.fork(source.run_id, from_step="step:tests.hygiene.mark#1")
        assert (await fork.detail()).events == {"stage": "two", "extra": 1}
        early = await client.fork(source.run_id, from_step="step:tests.hygiene.mark#0")
        assert (await early.detail()).events == {"stage": "one"}
        fresh = await client.fork(source.run_id)
        assert (await fresh.detail()).events == {}
        assert (await fresh.status()) == RunStatus.PENDING
    assert uuid.UUID(str(fork.run_id))
