"""A small asyncpg connection pool for the hot path.

asyncpg's ``Pool`` spends about as long on acquire and release (a shielded task per
release, holder bookkeeping) as a whole step record takes on the wire. This pool is a free
list and a queue of waiters: taking and returning a connection costs no task, no reset
query and no await when a connection is free. Connections stay in their default session
state because durable never changes it (no SET, no LISTEN, only transaction-scoped locks).

A connection whose block ended in an error it may not have survived (a lost or terminated
connection, a cancellation mid-query, an open transaction) is closed, never reused; a
connection found closed in the free list is dropped, never handed out.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, cast

import asyncpg

from durable._foundation.faults import is_infrastructure

__all__ = ["BorrowedPool", "ConnectionPool"]

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class _Lease:
    """``async with pool.acquire() as conn``: one connection, returned on exit."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        self._conn = await self._pool._take()
        return self._conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool._give(conn, healthy=_survives(conn, exc))


def _discard(attempt: asyncio.Future[asyncpg.Connection]) -> None:
    if attempt.cancelled() or attempt.exception() is not None:
        return
    attempt.result().terminate()


def _survives(conn: asyncpg.Connection, exc: BaseException | None) -> bool:
    if conn.is_closed() or conn.is_in_transaction():
        return False
    # A statement's own error leaves the connection usable. A terminated backend (57P01,
    # a PostgresError too) leaves asyncpg waiting for a reply that never comes: its next
    # statement fails "another operation is in progress". Anything else (a cancellation or
    # a network error mid-query) may have left a query running on it.
    if exc is None:
        return True
    return isinstance(exc, asyncpg.PostgresError) and not is_infrastructure(exc)


class ConnectionPool:
    """Up to ``max_size`` connections made by ``connect``, shared by every task."""

    def __init__(self, connect: Connect, *, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, not {max_size}")
        self._connect = connect
        self._max_size = max_size
        self._free: deque[asyncpg.Connection] = deque()
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._size = 0
        self._closed = False

    async def open(self) -> None:
        """Make the first connection, so a bad URL fails here and not on first use."""
        self._give(await self._new(), healthy=True)

    def acquire(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return _Lease(self)

    async def _new(self) -> asyncpg.Connection:
        self._size += 1
        # A connect cancelled half way (say, mid TLS negotiation) leaves asyncpg futures
        # nobody reads; let it finish in the background and drop what it made.
        attempt = asyncio.ensure_future(self._connect())
        try:
            return await asyncio.shield(attempt)
        except BaseException:
            self._size -= 1
            attempt.add_done_callback(_discard)
            raise

    async def _take(self) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.InterfaceError("the connection pool is closed")
        while self._free:
            conn = self._free.pop()
            if not conn.is_closed():
                return conn
            self._size -= 1
        if self._size < self._max_size:
            return await self._new()
        waiter: asyncio.Future[asyncpg.Connection | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        try:
            handed = await waiter
        except BaseException:
            late = waiter.result() if waiter.done() and not waiter.cancelled() else None
            if late is not None:
                self._give(late, healthy=True)  # handed over just as we were cancelled
            raise
        return handed if handed is not None else await self._new()

    def _give(self, conn: asyncpg.Connection, *, healthy: bool) -> None:
        handed: asyncpg.Connection | None = conn
        if not healthy or self._closed:
            self._size -= 1
            conn.terminate()
            handed = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                # None tells the waiter a place freed up: it opens its own connection.
                waiter.set_result(handed)
                return
        if handed is not None:
            self._free.append(handed)

    async def close(self) -> None:
        """Close every idle connection; connections in use close when returned."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the connection pool is closed"))
        free, self._free = list(self._free), deque()
        self._size -= len(free)
        await asyncio.gather(*(c.close(timeout=5) for c in free), return_exceptions=True)

    # -- one statement on a pooled connection ---------------------------------------------
    # A backend terminated while its connection sat idle here leaves asyncpg mid-way for a
    # moment: the FATAL message is read, the close is not yet, so is_closed() is False and
    # the next statement is refused before it is sent. Such a statement is safe to send
    # again on another connection (the broken one is closed on the way out).

    async def _one(self, send: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        for tries_left in range(self._max_size, -1, -1):
            try:
                async with self.acquire() as conn:
                    return await send(conn)
            except (asyncpg.InternalClientError, asyncpg.InterfaceError) as exc:
                if not tries_left or not _unsent(exc):
                    raise
        raise AssertionError("unreachable: the last try returns or raises")

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._one(lambda conn: conn.fetch(sql, *args))
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._one(lambda conn: conn.fetchrow(sql, *args))
        return row

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._one(lambda conn: conn.fetchval(sql, *args))

    async def execute(self, sql: str, *args: Any) -> str:
        status: str = await self._one(lambda conn: conn.execute(sql, *args))
        return status


class BorrowedPool(ConnectionPool):
    """An application's own asyncpg pool, used as durable's: statements take its
    connections, and closing durable leaves it open for its owner."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(self.lend, max_size=max(1, pool.get_max_size()))
        self._borrowed = pool

    async def lend(self) -> asyncpg.Connection:
        """A connection of the pool held until ``give_back`` (the LISTEN connection)."""
        # A pool hands out proxies of its connections; they answer as a connection does.
        return cast(asyncpg.Connection, await self._borrowed.acquire())

    async def give_back(self, conn: asyncpg.Connection) -> None:
        await self._borrowed.release(cast(Any, conn))

    async def open(self) -> None:
        await self._borrowed.fetchval("SELECT 1")  # a closed or broken pool fails here

    def acquire(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return cast(AbstractAsyncContextManager[asyncpg.Connection], self._borrowed.acquire())

    async def close(self) -> None:
        """Nothing to close: the pool belongs to the application."""


def _unsent(exc: BaseException) -> bool:
    """True when asyncpg refused a statement before sending it (its connection was already
    broken or closed), so sending it again elsewhere cannot run it twice."""
    text = str(exc)
    if isinstance(exc, asyncpg.InternalClientError):
        return text.startswith(("cannot switch to state", "not connected"))
    return isinstance(exc, asyncpg.InterfaceError) and text == "connection is closed"
