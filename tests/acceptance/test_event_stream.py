"""engine.events: lifecycle events from Postgres, in commit-safe order, resumable from a
cursor with nothing missed and nothing seen twice."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import asyncpg
import pytest

import durable
from durable import Engine, EventKind, StreamEvent, step, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio


@step
async def ev_first(x: int) -> int:
    return x + 1


@step(retries=1, initial_interval=0.01, max_interval=0.01)
async def ev_flaky(x: int) -> int:
    key = support.run_key("ev_flaky")
    support.CALLS[key] += 1
    if support.CALLS[key] == 1:
        raise ConnectionError("first attempt fails")
    return x * 2


@workflow(name="events.lifecycle")
async def lifecycle(x: int) -> int:
    y = await ev_first(x)
    await durable.sleep(0.3)  # longer than the inline wait: the run parks and resumes
    return await ev_flaky(y)


@workflow(name="events.one_step")
async def one_step(x: int) -> int:
    return await ev_first(x)


@step
async def ev_boom() -> None:
    raise ValueError("no")


@workflow(name="events.failing")
async def failing() -> None:
    await ev_boom()


async def collect(engine: Engine, until: int, **filters: Any) -> list[StreamEvent]:
    seen: list[StreamEvent] = []
    async for event in engine.events(**filters):
        seen.append(event)
        if len(seen) == until:
            break
    return seen


async def test_a_run_yields_each_transition_once_in_order(make_engine: EngineFactory) -> None:
    async with make_engine(lifecycle, failing) as engine:
        cursor = await engine.event_cursor()
        handle = await engine.start(lifecycle, 1)
        assert await handle.result(timeout=30) == 4
        bad = await engine.start(failing)
        with pytest.raises(durable.WorkflowFailed):
            await bad.result(timeout=30)
        events = await collect(engine, 7, since=cursor, run_id=handle.run_id)
        failed = await collect(engine, 3, since=cursor, workflow="events.failing")
    assert [e.kind for e in events] == [
        "run.started",
        "step.completed",
        "run.suspended",
        "run.resumed",
        "step.retrying",
        "step.completed",
        "run.completed",
    ]
    assert {e.run_id for e in events} == {handle.run_id}
    assert {e.workflow for e in events} == {"events.lifecycle"}
    assert [e.step_name for e in events if e.step] == ["ev_first", "ev_flaky", "ev_flaky"]
    assert [e.attempt for e in events if e.kind.startswith("step.")] == [1, 1, 2]
    assert [e.kind for e in failed] == ["run.started", "step.failed", "run.failed"]


async def test_kinds_filter_and_cursor_order(make_engine: EngineFactory) -> None:
    async with make_engine(one_step) as engine:
        cursor = await engine.event_cursor()
        handles = [await engine.start(one_step, i) for i in range(5)]
        for h in handles:
            await h.result(timeout=30)
        done = await collect(
            engine, 5, since=cursor, kinds=[EventKind.RUN_COMPLETED], workflow=["events.one_step"]
        )
    assert {e.run_id for e in done} == {h.run_id for h in handles}
    assert {e.kind for e in done} == {"run.completed"}
    positions = [tuple(map(int, e.cursor.split("."))) for e in done]
    assert positions == sorted(positions)


async def test_resumed_consumer_sees_every_event_once_across_a_worker_restart(
    make_engine: EngineFactory, database_url: str
) -> None:
    """A consumer cancelled mid-stream resumes from its last handled cursor while the
    worker is replaced; together its two lives see exactly the committed events."""
    handled: list[StreamEvent] = []

    async def consume(client: Engine, since: str, stop_after: int | None) -> None:
        async for event in client.events(since=since, workflow="events.one_step"):
            handled.append(event)  # "handled" then its cursor is the saved position
            if stop_after is not None and len(handled) >= stop_after:
                return

    async with make_engine(worker=False) as client:
        start = await client.event_cursor()
        async with make_engine(one_step, concurrency=8) as worker:
            first = [await worker.start(one_step, i) for i in range(20)]
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume, client, start, 25)
            for h in first:
                await h.result(timeout=60)
        saved = handled[-1].cursor  # the consumer is gone; the worker stopped
        async with make_engine(one_step, concurrency=8) as worker:
            second = [await worker.start(one_step, i) for i in range(20)]
            for h in second:
                await h.result(timeout=60)
            await consume(client, saved, 120)
    # Every run: started, one step, completed; nothing missed, nothing twice.
    assert len(handled) == 120
    seen = Counter((e.run_id, e.kind) for e in handled)
    assert set(seen.values()) == {1}
    assert {e.run_id for e in handled} == {h.run_id for h in first + second}
    rows = await support.count_rows(
        database_url, "SELECT count(*) FROM durable.event_log WHERE workflow_name = $1",
        "events.one_step",
    )  # fmt: skip
    assert rows == 120
    assert len({e.cursor for e in handled}) == 120


async def test_bad_arguments_are_refused(make_engine: EngineFactory) -> None:
    async with make_engine(worker=False) as engine:
        with pytest.raises(ValueError, match="not an event cursor"):
            engine.events(since="latest")
        with pytest.raises(ValueError, match="unknown event kinds"):
            engine.events(kinds=["run.exploded"])
        with pytest.raises(TypeError, match="not a string"):
            engine.events(kinds="run.completed")
        with pytest.raises(ValueError, match="not a UUID"):
            engine.events(run_id="nope")


async def test_events_leave_with_their_runs(make_engine: EngineFactory, database_url: str) -> None:
    async with make_engine(one_step) as engine:
        handle = await engine.start(one_step, 1)
        await handle.result(timeout=30)
        before = await support.count_rows(
            database_url, "SELECT count(*) FROM durable.event_log WHERE run_id = $1",
            handle.run_id,
        )  # fmt: skip
        await engine.delete_run(handle.run_id)
        after = await support.count_rows(
            database_url, "SELECT count(*) FROM durable.event_log WHERE run_id = $1",
            handle.run_id,
        )  # fmt: skip
    assert (before, after) == (3, 0)


async def test_the_stream_outlives_terminated_connections(
    make_engine: EngineFactory, database_url: str
) -> None:
    """Every backend of the database is terminated between two runs (the listener, the
    pooled connections): the consumer reconnects and catches up, missing nothing."""
    seen: list[StreamEvent] = []
    async with make_engine(one_step) as engine:
        since = await engine.event_cursor()

        async def consume() -> None:
            async for event in engine.events(since=since, kinds=["run.completed"]):
                seen.append(event)
                if len(seen) == 2:
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            first = await engine.start(one_step, 1)
            await first.result(timeout=30)
            await support.count_rows(
                database_url,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            while True:  # the engine's own connections are back: start the second run
                try:
                    second = await engine.start(one_step, 2)
                    break
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await anyio.sleep(0.05)
            await second.result(timeout=30)
    assert [e.run_id for e in seen] == [first.run_id, second.run_id]
