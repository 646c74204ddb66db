"""Combined writes on Postgres: a row Postgres refuses fails only its own waiter (issue 10).

The record writer sends the writes that queue while another is on the wire as one
statement. A row whose data Postgres refuses (here a cursor key over the btree entry limit
of the steps primary key) used to fail that statement for every run combined with it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import asyncpg
import pytest

from durable._store.pool import ConnectionPool
from durable._store.record_writer import Combiner, StepWrite
from durable._store.run_inserts import NewRun
from durable._store.store import Store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    pool = ConnectionPool(lambda: asyncpg.connect(database_url), max_size=4)
    await pool.open()
    try:
        yield Store(pool)
    finally:
        await pool.close()


async def _claimed_runs(store: Store, count: int) -> list[tuple[uuid.UUID, int]]:
    for _ in range(count):
        await store.insert_run(NewRun(uuid.uuid4(), "wf", 1, '{"args":[],"kwargs":{}}', "default"))
    rows = await store.claim("w1", 30.0, count, ["default"], ["wf"], [1])
    assert len(rows) == count
    return [(row.id, row.attempt) for row in rows]


def _write(run: tuple[uuid.UUID, int], key: str) -> StepWrite:
    run_id, attempt = run
    return StepWrite(run_id, attempt, key, 0, "step", "s", "completed", output_json="1")


async def test_a_refused_row_in_a_combined_write_fails_only_its_own_waiter(
    store: Store, database_url: str
) -> None:
    first, good, bad = await _claimed_runs(store, 3)
    batches: list[int] = []

    async def many(items: list[StepWrite]) -> set[object]:
        batches.append(len(items))
        return await store.record_steps(items)

    # One write at a time: the two writes made while the first is on the wire combine.
    combiner: Combiner[StepWrite] = Combiner(
        store.record_step, many, lambda w: (w.run_id, w.key), max_in_flight=1
    )
    outcomes: dict[str, object] = {}

    async def write(name: str, item: StepWrite) -> None:
        try:
            outcomes[name] = await combiner.write(item)
        except Exception as exc:
            outcomes[name] = exc

    long_key = "step:" + secrets.token_hex(2000) + "#0"  # over the 2704-byte index entry limit
    async with anyio.create_task_group() as tg:
        tg.start_soon(write, "first", _write(first, "step:a#0"))
        await anyio.lowlevel.checkpoint()  # the first write is in flight before the others
        tg.start_soon(write, "good", _write(good, "step:a#0"))
        tg.start_soon(write, "bad", _write(bad, long_key))
    await combiner.close()

    assert batches == [2]  # the two queued writes did go out combined
    assert outcomes["first"] is True
    assert outcomes["good"] is True
    assert isinstance(outcomes["bad"], asyncpg.ProgramLimitExceededError)
    conn = await asyncpg.connect(database_url)
    try:
        written = await conn.fetch("SELECT run_id FROM durable.steps")
    finally:
        await conn.close()
    assert {row["run_id"] for row in written} == {first[0], good[0]}
