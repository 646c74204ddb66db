"""The connection pool on its own, with a fake connection factory: reuse, the size limit,
waiting for a connection, and the discard of connections that may be broken.

The fake implements only what the pool calls on a connection (``is_closed``,
``is_in_transaction``, ``terminate``, ``close`` and a statement method); the pool's own
behaviour on a real server is covered by ``tests/integration/test_pool_faults.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from durable._store.pool import ConnectionPool

pytestmark = pytest.mark.anyio


class FakeConnection:
    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False
        self.terminated = False
        self.in_transaction = False
        self.refuse_next: Exception | None = None

    def is_closed(self) -> bool:
        return self.closed

    def is_in_transaction(self) -> bool:
        return self.in_transaction

    def terminate(self) -> None:
        self.terminated = self.closed = True

    async def close(self, timeout: float | None = None) -> None:
        self.closed = True

    async def fetchval(self, sql: str, *args: Any) -> Any:
        if self.refuse_next is not None:
            error, self.refuse_next = self.refuse_next, None
            raise error
        return (sql, self.number)


class Factory:
    """Makes numbered fake connections and keeps every one it made."""

    def __init__(self) -> None:
        self.made: list[FakeConnection] = []

    async def __call__(self) -> Any:
        conn = FakeConnection(len(self.made))
        self.made.append(conn)
        return conn


async def _pool(max_size: int = 2) -> tuple[ConnectionPool, Factory]:
    factory = Factory()
    pool = ConnectionPool(factory, max_size=max_size)
    await pool.open()
    return pool, factory


async def _until_waiting(pool: ConnectionPool, count: int = 1) -> None:
    """Yield to the loop until ``count`` tasks wait for a connection (no clock involved)."""
    for _ in range(1000):
        if len(pool._waiters) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{len(pool._waiters)} waiters, expected {count}")


def test_a_pool_needs_room_for_one_connection() -> None:
    with pytest.raises(ValueError, match="max_size must be >= 1"):
        ConnectionPool(Factory(), max_size=0)


async def test_open_makes_one_connection_that_is_reused() -> None:
    pool, factory = await _pool()
    for _ in range(3):
        async with pool.acquire() as conn:
            assert conn is factory.made[0]
    assert len(factory.made) == 1


async def test_no_more_than_max_size_connections_and_a_waiter_gets_the_one_returned() -> None:
    pool, factory = await _pool(max_size=2)
    first, second = pool.acquire(), pool.acquire()
    one, two = await first.__aenter__(), await second.__aenter__()
    assert {one, two} == set(factory.made)
    third = asyncio.ensure_future(pool.acquire().__aenter__())
    await _until_waiting(pool)
    assert len(factory.made) == 2  # it waits instead of connecting
    assert not third.done()
    await first.__aexit__(None, None, None)
    assert await third is one  # handed over directly, not through the free list
    await second.__aexit__(None, None, None)
    assert len(factory.made) == 2


@pytest.mark.parametrize(
    "error",
    [ConnectionResetError("lost"), asyncio.CancelledError(), asyncpg.AdminShutdownError("bye")],
    ids=["network", "cancelled", "terminated"],
)
async def test_a_connection_that_may_be_broken_is_closed_not_reused(error: BaseException) -> None:
    pool, factory = await _pool()
    with pytest.raises(type(error)):
        async with pool.acquire():
            raise error
    assert factory.made[0].terminated
    async with pool.acquire() as conn:
        assert conn is factory.made[1]


async def test_a_statement_error_leaves_the_connection_in_use() -> None:
    pool, factory = await _pool()
    with pytest.raises(asyncpg.UniqueViolationError):
        async with pool.acquire():
            raise asyncpg.UniqueViolationError("duplicate key")
    async with pool.acquire() as conn:
        assert conn is factory.made[0]
    assert not factory.made[0].terminated


async def test_a_connection_left_in_a_transaction_is_discarded() -> None:
    pool, factory = await _pool()
    async with pool.acquire() as conn:
        conn.in_transaction = True
    assert factory.made[0].terminated
    async with pool.acquire() as conn:
        assert conn is factory.made[1]


async def test_a_connection_closed_while_idle_is_dropped_not_handed_out() -> None:
    pool, factory = await _pool()
    factory.made[0].closed = True  # the server went away while it sat in the free list
    async with pool.acquire() as conn:
        assert conn is factory.made[1]
    assert len(factory.made) == 2


async def test_a_discarded_connection_frees_a_place_for_a_waiter() -> None:
    pool, factory = await _pool(max_size=1)
    lease = pool.acquire()
    await lease.__aenter__()
    waiting = asyncio.ensure_future(pool.acquire().__aenter__())
    await _until_waiting(pool)
    await lease.__aexit__(ConnectionResetError, ConnectionResetError("lost"), None)
    assert await waiting is factory.made[1]  # it made its own, in the freed place
    assert factory.made[0].terminated


async def test_a_cancelled_waiter_takes_nothing_and_the_connection_stays_free() -> None:
    pool, factory = await _pool(max_size=1)
    lease = pool.acquire()
    await lease.__aenter__()
    waiting = asyncio.ensure_future(pool.acquire().__aenter__())
    await _until_waiting(pool)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await lease.__aexit__(None, None, None)
    async with pool.acquire() as conn:
        assert conn is factory.made[0]
    assert len(factory.made) == 1


async def test_close_closes_idle_connections_and_fails_waiters() -> None:
    pool, _ = await _pool(max_size=1)
    lease = pool.acquire()
    held = await lease.__aenter__()
    waiting = asyncio.ensure_future(pool.acquire().__aenter__())
    await _until_waiting(pool)
    await pool.close()
    with pytest.raises(asyncpg.InterfaceError, match="closed"):
        await waiting
    await lease.__aexit__(None, None, None)
    assert held.terminated  # returned after close: closed, not kept
    with pytest.raises(asyncpg.InterfaceError, match="closed"):
        async with pool.acquire():
            pass


async def test_a_statement_refused_before_sending_goes_out_on_another_connection() -> None:
    pool, factory = await _pool(max_size=2)
    factory.made[0].refuse_next = asyncpg.InterfaceError("connection is closed")
    assert await pool.fetchval("SELECT 1") == ("SELECT 1", 1)
    assert factory.made[0].terminated


async def test_a_statement_that_may_have_run_is_not_sent_again() -> None:
    pool, factory = await _pool(max_size=2)
    factory.made[0].refuse_next = asyncpg.InterfaceError("cannot perform operation")
    with pytest.raises(asyncpg.InterfaceError, match="cannot perform operation"):
        await pool.fetchval("SELECT 1")
    assert len(factory.made) == 1
