"""``Client`` and ``Worker`` as public classes: a client on the caller's own pool, a run
started inside the caller's transaction (the transactional outbox), and a worker that
runs on its own beside a client."""

from __future__ import annotations

import uuid
import warnings

import asyncpg
import pytest

from durable import Client, Engine, RunNotFound, Worker, step, workflow
from tests.acceptance import support

pytestmark = pytest.mark.anyio

SEEN: list[str] = []


@step
async def note(order_id: str) -> str:
    SEEN.append(order_id)
    return f"shipped {order_id}"


@workflow(name="tests.client.ship")
async def ship(order_id: str) -> str:
    return await note(order_id)


WORKFLOWS = [ship]


@pytest.fixture(autouse=True)
def _forget() -> None:
    SEEN.clear()


async def _orders_table(conn: asyncpg.Connection) -> None:
    await conn.execute("CREATE TABLE IF NOT EXISTS shop_orders (id text PRIMARY KEY)")


async def test_a_start_in_a_rolled_back_transaction_leaves_no_run(
    engine: Engine, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await _orders_table(conn)
        rolled_back = uuid.uuid4()
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("INSERT INTO shop_orders VALUES ('o-1')")
        await engine.start(ship, "o-1", run_id=rolled_back, connection=conn)
        await transaction.rollback()  # say, the payment was declined
        # The worker drains everything due: a run committed after the rollback completes,
        # and by then the rolled-back one would have run too, had it ever existed.
        later = await engine.start(ship, "o-2")
        assert await later.result(timeout=30) == "shipped o-2"
        with pytest.raises(RunNotFound):
            await engine.get_run(rolled_back)
        assert await conn.fetchval("SELECT count(*) FROM shop_orders") == 0
        assert SEEN == ["o-2"]
    finally:
        await conn.close()


async def test_a_start_in_a_committed_transaction_runs(engine: Engine, database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await _orders_table(conn)
        async with conn.transaction():
            await conn.execute("INSERT INTO shop_orders VALUES ('o-3')")
            handle = await engine.start(ship, "o-3", connection=conn)
            # Not committed yet: another connection (the engine's) cannot see the run.
            with pytest.raises(RunNotFound):
                await engine.get_run(handle.run_id)
        assert await handle.result(timeout=30) == "shipped o-3"
        assert SEEN == ["o-3"]
    finally:
        await conn.close()


async def test_a_client_on_the_callers_pool_with_a_worker_of_its_own(database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    try:
        # Recorded, not raised: an error raised inside the pool's release would hang close().
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            async with (
                Client.from_pool(pool, workflows=[ship]) as client,
                Worker(client, concurrency=2, poll_interval=0.05) as worker,
            ):
                await support.wait_until(lambda: worker.running, what="the worker's poller")
                handle = await client.start(ship, "o-4")
                assert await handle.result(timeout=30) == "shipped o-4"
                async with pool.acquire() as conn:
                    status = await conn.fetchval(
                        "SELECT status FROM durable.runs WHERE id = $1", handle.run_id
                    )
                assert status == "completed"
        # The LISTEN connection went back to the pool without our callbacks on it.
        leftovers = [w for w in caught if issubclass(w.category, asyncpg.InterfaceWarning)]
        assert leftovers == [], [str(w.message) for w in leftovers]
        # Closing the client left the application's pool open and usable.
        assert await pool.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


async def test_a_plain_client_starts_runs_that_a_worker_elsewhere_executes(
    database_url: str,
) -> None:
    async with Client(database_url, workflows=[ship]) as client:
        handle = await client.start(ship, "o-5")
        assert (await client.get_run(handle.run_id)).status == "pending"
        async with Engine(database_url, workflows=[ship], poll_interval=0.05):
            assert await handle.result(timeout=30) == "shipped o-5"


async def test_an_engine_without_a_worker_is_a_client(database_url: str) -> None:
    engine = Engine(database_url, workflows=[ship], worker=False)
    assert isinstance(engine, Client)
    async with engine:
        assert engine.worker is None
        handle = await engine.start(ship, "o-6")
        assert (await engine.get_run(handle.run_id)).status == "pending"


def test_from_pool_refuses_what_is_not_an_asyncpg_pool() -> None:
    with pytest.raises(TypeError, match=r"asyncpg\.Pool"):
        Client.from_pool("postgresql://localhost/db")  # type: ignore[arg-type]


def test_worker_options_are_checked_when_it_is_built() -> None:
    client = Client("postgresql://unused/db", workflows=[ship])
    with pytest.raises(ValueError, match="heartbeat_seconds"):
        Worker(client, lease_seconds=1.0, heartbeat_seconds=2.0)
