"""Concurrent starts are combined: the starts made in one turn of the loop, or while a
start statement is on the wire, leave together as one multi-row insert and one commit.

The statements are counted by watching the client's pool (the real one: every start
still reaches Postgres), so "fewer statements than starts" is observed, not timed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from durable import Engine, RunNotFound, workflow
from durable.sql import query

pytestmark = pytest.mark.anyio


@workflow(name="batching.ship")
async def ship(order: str) -> str:
    return f"shipped {order}"


@workflow(name="batching.bill")
async def bill(order: str) -> str:
    return f"billed {order}"


class InsertSpy:
    """The start statements a pool sends: the run ids of each, and which went alone."""

    def __init__(self, engine: Engine) -> None:
        self.sent: list[list[uuid.UUID]] = []
        self.lone = 0
        pool = engine.runtime.store.pool
        fetch, fetchval = pool.fetch, pool.fetchval

        async def spied_fetch(sql: str, *args: Any) -> Any:
            if sql == query("insert_runs"):
                self.sent.append(list(args[0]))
            return await fetch(sql, *args)

        async def spied_fetchval(sql: str, *args: Any) -> Any:
            if sql == query("insert_run"):
                self.sent.append([args[0]])
                self.lone += 1
            return await fetchval(sql, *args)

        pool.fetch, pool.fetchval = spied_fetch, spied_fetchval  # type: ignore[method-assign]

    def together(self, *run_ids: uuid.UUID) -> bool:
        """Whether one statement carried all of ``run_ids``."""
        return any(set(run_ids) <= set(sent) for sent in self.sent)


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Engine]:
    async with Engine(database_url, workflows=[ship, bill], worker="manual") as engine:
        yield engine


async def _row(database_url: str, run_id: uuid.UUID) -> asyncpg.Record:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT workflow_name, input::text, queue, priority, tags, idempotency_key, "
            "wake_at > durable.now() AS delayed, deadline_at - created_at AS timeout, "
            "traceparent, concurrency_key, resource_id, metadata::text "
            "FROM durable.runs WHERE id = $1",
            run_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return row


async def test_concurrent_starts_take_fewer_statements_than_starts_and_store_every_field(
    client: Engine, database_url: str
) -> None:
    spy = InsertSpy(client)
    count = 200

    def options(i: int) -> dict[str, Any]:
        return {
            "tags": [f"t{i}", "bulk"][: i % 3],
            "priority": i % 5 - 2,
            "idempotency_key": f"order-{i}" if i % 2 else None,
            "delay": 3600 if i % 4 == 0 else None,
            "queue": "slow" if i % 7 == 0 else None,
            "resource_id": f"tenant-{i % 3}" if i % 3 else None,
            "metadata": {"i": i} if i % 2 == 0 else None,
            "timeout": 60 + i if i % 6 == 0 else None,
        }

    handles = await asyncio.gather(
        *(client.start(ship, f"o-{i}", **options(i)) for i in range(count))
    )

    assert all(handle.created for handle in handles)
    assert len({handle.run_id for handle in handles}) == count
    assert len(spy.sent) < count
    for i, handle in enumerate(handles):
        row, wanted = await _row(database_url, handle.run_id), options(i)
        assert row["workflow_name"] == "batching.ship"
        assert json.loads(row["input"])["args"] == [f"o-{i}"]
        assert row["queue"] == (wanted["queue"] or "default")
        assert row["priority"] == wanted["priority"]
        assert row["tags"] == wanted["tags"]
        assert row["idempotency_key"] == wanted["idempotency_key"]
        assert row["delayed"] is (wanted["delay"] is not None)
        timeout = row["timeout"]
        assert (timeout is None) is (wanted["timeout"] is None)
        if timeout is not None:
            assert abs(timeout.total_seconds() - wanted["timeout"]) < 1
        assert row["traceparent"] is None or row["traceparent"].startswith("00-")
        assert row["resource_id"] == wanted["resource_id"]
        metadata = wanted["metadata"]
        assert (json.loads(row["metadata"]) if row["metadata"] else None) == metadata
    due = await client.runtime.store.count_due_runs()
    assert due == sum(1 for i in range(count) if options(i)["delay"] is None)


async def test_a_lone_start_goes_out_alone_at_once(client: Engine) -> None:
    spy = InsertSpy(client)
    handle = await client.start(ship, "o-1")
    assert (spy.lone, spy.sent) == (1, [[handle.run_id]])
    assert handle.created
    await client.worker.claim_once()
    assert await handle.result(timeout=30) == "shipped o-1"


async def test_the_same_idempotency_key_twice_in_one_batch_makes_one_run(client: Engine) -> None:
    spy = InsertSpy(client)
    ids = [uuid.uuid4() for _ in range(3)]
    first, twin, other = await asyncio.gather(
        client.start(ship, "o-0", run_id=ids[0]),
        client.start(ship, "o-1", run_id=ids[1], idempotency_key="k"),
        client.start(ship, "o-1", run_id=ids[2], idempotency_key="k"),
    )
    assert spy.together(ids[1], ids[2])
    assert twin.run_id == other.run_id != first.run_id
    assert sorted([twin.created, other.created]) == [False, True]
    listed = await client.list_runs(workflow="batching.ship")
    assert len(listed.items) == 2


async def test_a_run_id_taken_by_another_workflow_fails_only_that_start(
    client: Engine,
) -> None:
    taken = (await client.start(bill, "o-0")).run_id
    spy = InsertSpy(client)
    ids = [uuid.uuid4(), taken, uuid.uuid4()]
    before, clash, after = await asyncio.gather(
        *(client.start(ship, f"o-{i}", run_id=run_id) for i, run_id in enumerate(ids)),
        return_exceptions=True,
    )
    assert spy.together(*ids)
    assert isinstance(clash, ValueError)
    assert "batching.bill" in str(clash)
    for handle in (before, after):
        assert not isinstance(handle, BaseException)
        assert handle.created
        await client.get_run(handle.run_id)
    assert (await client.get_run(taken)).workflow == "batching.bill"


async def test_a_start_on_the_callers_connection_never_joins_a_batch(
    client: Engine, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        spy = InsertSpy(client)
        rolled_back = uuid.uuid4()
        transaction = conn.transaction()
        await transaction.start()
        before, inside, after = await asyncio.gather(
            client.start(ship, "o-1"),
            client.start(ship, "o-2", run_id=rolled_back, connection=conn),
            client.start(ship, "o-3"),
        )
        assert (inside.run_id, inside.created) == (rolled_back, True)
        await transaction.rollback()
        assert spy.together(before.run_id, after.run_id)
        assert not spy.together(rolled_back)  # it went on the caller's connection only
        with pytest.raises(RunNotFound):
            await client.get_run(rolled_back)
        for handle in (before, after):
            await client.get_run(handle.run_id)
    finally:
        await conn.close()


async def test_batched_starts_run_to_completion(client: Engine) -> None:
    handles = await asyncio.gather(*(client.start(ship, f"o-{i}") for i in range(20)))
    while await client.worker.claim_once():
        pass
    results = [await handle.result(timeout=30) for handle in handles]
    assert results == [f"shipped o-{i}" for i in range(20)]
