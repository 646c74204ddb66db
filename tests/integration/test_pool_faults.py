"""The pool never hands out a connection whose backend was terminated, and the errors a
dead connection raises are classed as infrastructure (invariant 8)."""

from __future__ import annotations

import asyncio

import anyio
import asyncpg
import pytest

from durable._foundation.faults import Backoff, is_infrastructure
from durable._store.pool import ConnectionPool

pytestmark = pytest.mark.anyio


async def test_a_connection_terminated_mid_statement_is_discarded(database_url: str) -> None:
    pool = ConnectionPool(lambda: asyncpg.connect(database_url), max_size=1)
    await pool.open()
    admin = await asyncpg.connect(database_url)
    try:
        first_pid = await pool.fetchval("SELECT pg_backend_pid()")
        sleeping = asyncio.ensure_future(pool.fetchval("SELECT pg_sleep(60)"))
        terminated = False
        with anyio.fail_after(20):
            while not terminated:  # once pg_sleep runs on the pooled connection
                await anyio.sleep(0.01)
                terminated = await admin.fetchval(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep%'",
                    first_pid,
                )
        with pytest.raises(Exception) as raised:
            await sleeping
        assert is_infrastructure(raised.value), repr(raised.value)
        # Checked before the event loop could notice the socket closing: the terminated
        # connection went back to no free list (57P01 is a PostgresError, not a clean one).
        assert not pool._free
        assert await pool.fetchval("SELECT pg_backend_pid()") != first_pid
    finally:
        await admin.close()
        await pool.close()


async def test_a_block_ended_by_a_server_shutdown_error_never_returns_its_connection(
    database_url: str,
) -> None:
    """57P01 is a PostgresError like a unique violation, but the connection is gone: the
    pool must not keep it (asyncpg would refuse its next statement)."""
    pool = ConnectionPool(lambda: asyncpg.connect(database_url), max_size=1)
    await pool.open()
    try:
        with pytest.raises(asyncpg.exceptions.AdminShutdownError):
            async with pool.acquire():
                raise asyncpg.exceptions.AdminShutdownError("terminating connection")
        assert not pool._free
        with pytest.raises(asyncpg.exceptions.UniqueViolationError):
            async with pool.acquire():
                raise asyncpg.exceptions.UniqueViolationError("duplicate key")
        assert len(pool._free) == 1  # a statement's own error leaves it usable
    finally:
        await pool.close()


async def test_a_statement_refused_before_sending_is_sent_on_another_connection(
    database_url: str,
) -> None:
    """A pooled connection whose backend was terminated while idle can be handed out in the
    moment before asyncpg notices; asyncpg refuses the statement unsent, so the pool sends
    it again on a fresh connection."""
    pool = ConnectionPool(lambda: asyncpg.connect(database_url), max_size=2)
    await pool.open()
    try:
        broken = pool._free[-1]
        broken_pid = broken.get_server_pid()

        async def send(conn: asyncpg.Connection) -> int:
            if conn is broken:  # what asyncpg raises for a connection in that state
                raise asyncpg.InternalClientError(
                    "cannot switch to state 12; another operation (2) is in progress"
                )
            pid: int = await conn.fetchval("SELECT pg_backend_pid()")
            return pid

        # fetchval and the other one-statement calls go through _one.
        assert await pool._one(send) != broken_pid
        assert broken.is_closed()  # discarded on the way out
    finally:
        await pool.close()


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is ..."),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        ConnectionResetError("reset by peer"),
        TimeoutError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_of_a_failing_database_are_infrastructure(error: BaseException) -> None:
    assert is_infrastructure(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.DatetimeFieldOverflowError("interval out of range"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.UndefinedTableError("relation does not exist"),
        ValueError("a bug"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_of_code_or_data_are_not_infrastructure(error: BaseException) -> None:
    assert not is_infrastructure(error)


def test_backoff_grows_with_jitter_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(first=0.1, cap=1.0)
    waits = [backoff.next() for _ in range(8)]
    assert 0.05 <= waits[0] <= 0.1
    assert all(0 < w <= 1.0 for w in waits)
    assert max(waits[4:]) >= 0.5  # grew to the cap: at least half of it
    backoff.reset()
    assert backoff.next() <= 0.1
