"""A progress watch and the run's record writes serialize on the run row.

A record write's fence holds the row FOR KEY SHARE and reads ``watch_until`` to decide
whether to NOTIFY. Were the watch able to commit while such a write is in flight, the
write would decide from the row as it was (no watch) and commit after the waiter's
first read: a lost wake-up. ``watch_progress`` therefore waits for writes in flight.
"""

from __future__ import annotations

import uuid

import anyio
import asyncpg
import pytest

from durable.sql import query

pytestmark = pytest.mark.anyio


async def test_a_watch_waits_for_a_record_write_in_flight(
    database_url: str, db: asyncpg.Connection
) -> None:
    run_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO durable.runs (id, workflow_name, input) VALUES ($1, 'tests.watched', '{}')",
        run_id,
    )
    writer = await asyncpg.connect(database_url)
    watcher = await asyncpg.connect(database_url)
    try:
        tx = writer.transaction()
        await tx.start()
        # What record_step's fence holds until its statement commits.
        await writer.execute("SELECT id FROM durable.runs WHERE id = $1 FOR KEY SHARE", run_id)
        async with anyio.create_task_group() as tg:
            tg.start_soon(watcher.execute, query("watch_progress"), run_id, 1, 60.0)
            pid = watcher.get_server_pid()
            for _ in range(1000):  # until the watch is seen waiting on the writer's lock
                waiting = await db.fetchval(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
                )
                if waiting == "Lock":
                    break
                await anyio.sleep(0.01)
            assert waiting == "Lock"
            await tx.commit()  # the write lands first; the watch follows
        watched = await db.fetchval(
            "SELECT watch_until > durable.now() FROM durable.runs WHERE id = $1", run_id
        )
        assert watched is True
    finally:
        await writer.close()
        await watcher.close()


async def test_a_watch_on_a_due_run_wakes_the_workers(
    database_url: str, db: asyncpg.Connection
) -> None:
    """A claim that met the watch's row lock skipped the run (SKIP LOCKED): the watch
    wakes the workers again, or a due run would wait for the next fallback poll."""
    run_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO durable.runs (id, workflow_name, input, queue, wake_at) "
        "VALUES ($1, 'tests.watched', '{}', 'watched-queue', durable.now())",
        run_id,
    )
    woken = anyio.Event()

    def on_wake(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == "watched-queue":
            woken.set()

    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener("durable_wake", on_wake)
        await db.execute(query("watch_progress"), run_id, 1, 60.0)
        with anyio.fail_after(10):
            await woken.wait()
    finally:
        await listener.close()
