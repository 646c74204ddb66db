"""The poison-run counter of the claim statement: executions in a row whose lease expired
before they recorded or parked anything. A record or a park resets it; at
``max_run_attempts`` the claim hands the run back ``exhausted``, without its records."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from durable._store.pool import ConnectionPool
from durable._store.record_writer import StepWrite
from durable._store.rows import ClaimedRun
from durable._store.run_inserts import NewRun
from durable._store.store import Store

pytestmark = pytest.mark.anyio

WORKER = "host:1:poison"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    pool = ConnectionPool(lambda: asyncpg.connect(database_url), max_size=2)
    await pool.open()
    try:
        yield Store(pool)
    finally:
        await pool.close()


async def _start(store: Store) -> uuid.UUID:
    run_id, _ = await store.insert_run(
        NewRun(uuid.uuid4(), "poison", 1, '{"args": [], "kwargs": {}}', "default")
    )
    return run_id


async def _claim(store: Store, db: asyncpg.Connection, max_attempts: int = 3) -> ClaimedRun:
    [row] = await store.claim(WORKER, 30.0, 1, ["default"], ["poison"], [1], max_attempts)
    # The worker "dies": its lease expires at once.
    await db.execute(
        "UPDATE durable.runs SET wake_at = durable.now(), lease_expires_at = durable.now()"
    )
    return row


async def test_lost_leases_count_until_a_record_resets_them(
    store: Store, db: asyncpg.Connection
) -> None:
    await _start(store)
    first = await _claim(store, db)
    assert (first.lost_executions, first.exhausted) == (0, False)
    assert (await _claim(store, db)).lost_executions == 1

    progressed = await _claim(store, db)
    assert progressed.lost_executions == 2
    write = StepWrite(
        progressed.id, progressed.attempt, "step:a#0", 0, "step", "a", "completed", "1"
    )
    assert await store.record_step(write)
    assert (await _claim(store, db)).lost_executions == 0  # it recorded: not lost for nothing

    assert (await _claim(store, db)).lost_executions == 1
    assert (await _claim(store, db)).lost_executions == 2
    exhausted = await _claim(store, db)
    assert (exhausted.lost_executions, exhausted.exhausted) == (3, True)
    assert exhausted.records is None  # nothing to load for a run that will not run


async def test_a_park_resets_the_count(store: Store, db: asyncpg.Connection) -> None:
    await _start(store)
    await _claim(store, db)
    row = await _claim(store, db)
    assert row.lost_executions == 1
    assert await store.park(row.id, row.attempt, "sleeping", None, [], [])
    await db.execute("UPDATE durable.runs SET wake_at = durable.now()")
    assert (await _claim(store, db)).lost_executions == 0
