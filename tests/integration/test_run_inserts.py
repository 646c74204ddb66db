"""Combined starts on Postgres (``RunInserts``): each waiter learns its own outcome.

Starts made in one turn of the loop, or while another is on the wire, leave together in
one insert. A row Postgres refuses fails only its own start, a cancelled waiter costs
the others nothing, and closing waits for the batch on the wire.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from durable._store.pool import ConnectionPool
from durable._store.run_inserts import NewRun, RunInserts

pytestmark = pytest.mark.anyio


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[ConnectionPool]:
    pool = ConnectionPool(lambda: asyncpg.connect(database_url), max_size=4)
    await pool.open()
    try:
        yield pool
    finally:
        await pool.close()


def _run(**fields: object) -> NewRun:
    values: dict[str, object] = {
        "run_id": uuid.uuid4(), "workflow": "wf", "version": 1,
        "input_json": '{"args":[],"kwargs":{}}', "queue": "default",
    }  # fmt: skip
    return NewRun(**{**values, **fields})  # type: ignore[arg-type]


async def _stored(pool: ConnectionPool, runs: list[NewRun]) -> set[uuid.UUID]:
    rows = await pool.fetch(
        "SELECT id FROM durable.runs WHERE id = ANY($1::uuid[])", [r.run_id for r in runs]
    )
    return {row["id"] for row in rows}


async def test_a_row_postgres_refuses_fails_only_its_own_start(pool: ConnectionPool) -> None:
    inserts = RunInserts(pool)
    first, good, bad, other = _run(), _run(tags=["ok"]), _run(tags=["a\x00b"]), _run()
    outcomes = await asyncio.gather(
        *(inserts.start(run) for run in (first, good, bad, other)), return_exceptions=True
    )
    assert isinstance(outcomes[2], asyncpg.DataError)
    assert [outcomes[i] for i in (0, 1, 3)] == [
        (first.run_id, True), (good.run_id, True), (other.run_id, True)
    ]  # fmt: skip
    assert await _stored(pool, [first, good, bad, other]) == {
        first.run_id, good.run_id, other.run_id
    }  # fmt: skip
    tags = await pool.fetchval("SELECT tags FROM durable.runs WHERE id = $1", good.run_id)
    assert tags == ["ok"]


async def test_two_starts_of_one_run_id_in_a_batch_create_it_once(pool: ConnectionPool) -> None:
    inserts = RunInserts(pool)
    run_id = uuid.uuid4()
    before, first, again = _run(), _run(run_id=run_id), _run(run_id=run_id)
    outcomes = await asyncio.gather(*(inserts.start(run) for run in (before, first, again)))
    assert outcomes == [(before.run_id, True), (run_id, True), (run_id, False)]


async def test_a_cancelled_waiter_loses_no_other_start(pool: ConnectionPool) -> None:
    inserts = RunInserts(pool)
    runs = [_run() for _ in range(4)]
    tasks = [asyncio.create_task(inserts.start(run)) for run in runs]
    await asyncio.sleep(0)  # each task reaches the combiner and queues
    tasks[2].cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(outcomes[2], asyncio.CancelledError)
    assert [outcomes[i] for i in (0, 1, 3)] == [(runs[i].run_id, True) for i in (0, 1, 3)]
    # The cancelled start was already queued: its row is written, once.
    assert await _stored(pool, runs) == {run.run_id for run in runs}


async def test_close_sends_and_waits_for_every_start_accepted(pool: ConnectionPool) -> None:
    inserts = RunInserts(pool)
    runs = [_run() for _ in range(5)]
    tasks = [asyncio.create_task(inserts.start(run)) for run in runs]
    await asyncio.sleep(0)  # each task reaches the combiner and queues
    assert inserts.unanswered == len(runs)
    await inserts.close()
    assert await _stored(pool, runs) == {run.run_id for run in runs}
    assert await asyncio.gather(*tasks) == [(run.run_id, True) for run in runs]
