"""Reads served by a replica: the pool behind ``Engine(read_url=...)``.

Lists, counts, run details, exports and the dashboard's pages read through a
``ReplicaPool``; writes, claims, heartbeats and everything a handle waits on use the
primary's pool. A replica serves a past state of the database, at most its replay lag
old, so a read may miss a run started a moment ago: ``get_run`` and ``export_run`` ask the
primary before they say ``RunNotFound``. A replica that cannot answer (down, restarting,
a query cancelled by a conflict with recovery) is infrastructure: the read goes to the
primary instead, and a warning says so (once a minute at most).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import asyncpg

from durable._foundation.dsn import redact, scrub
from durable._foundation.faults import INFRASTRUCTURE_ERRORS
from durable._store.connecting import connector
from durable._store.pool import ConnectionPool
from durable.sql import query

__all__ = [
    "READ_URL_ENV",
    "ReplicaPool",
    "open_replica_pool",
    "replica_caught_up",
    "replica_settled",
]

READ_URL_ENV = "DURABLE_READ_DATABASE_URL"
"""The command line's default ``--read-url`` (``Engine`` reads only its argument)."""

_log = logging.getLogger("durable.replica")
_WARN_EVERY = 60.0
_CATCH_UP_POLL = 0.02
_SETTLE_SECONDS = 1.0


class ReplicaPool(ConnectionPool):
    """Connections to a replica; a read the replica cannot serve goes to ``primary``."""

    def __init__(self, url: str, primary: ConnectionPool, *, max_size: int) -> None:
        super().__init__(connector(url, writes=False), max_size=max_size)
        self.url = url
        self.primary = primary
        self._borrowed: set[int] = set()
        """ids of the primary's connections handed out by ``acquire`` (given back there)."""
        self._warned_at = -_WARN_EVERY

    async def _take(self) -> asyncpg.Connection:
        try:
            return await super()._take()
        except INFRASTRUCTURE_ERRORS as exc:
            self._fell_back(exc)
        conn = await self.primary._take()
        self._borrowed.add(id(conn))
        return conn

    def _give(self, conn: asyncpg.Connection, *, healthy: bool) -> None:
        if id(conn) in self._borrowed:
            self._borrowed.discard(id(conn))
            self.primary._give(conn, healthy=healthy)
        else:
            super()._give(conn, healthy=healthy)

    async def _one(self, send: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        try:
            return await super()._one(send)
        except INFRASTRUCTURE_ERRORS as exc:  # a read: sending it again cannot harm
            self._fell_back(exc)
        return await self.primary._one(send)

    def _fell_back(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            _log.warning(
                "read replica %s unavailable (%s: %s); reading the primary",
                redact(self.url), type(exc).__name__, scrub(str(exc), self.url),
            )  # fmt: skip


async def open_replica_pool(
    url: str | None, primary: ConnectionPool, *, max_size: int
) -> ReplicaPool | None:
    """The pool for ``read_url`` (None without one). Its first connection is made now, so
    a malformed URL fails the engine's start; an unreachable replica does not (reads go
    to the primary until it answers)."""
    if url is None:
        return None
    pool = ReplicaPool(url, primary, max_size=max_size)
    try:
        await pool.open()
    except ValueError as exc:  # the driver may quote pieces of a malformed URL
        raise ValueError(f"invalid read_url {redact(url)}: {scrub(str(exc), url)}") from None
    except INFRASTRUCTURE_ERRORS as exc:
        pool._fell_back(exc)
    return pool


async def replica_caught_up(
    primary: ConnectionPool, replica: ConnectionPool, timeout: float
) -> bool:
    """Wait until ``replica`` replayed every commit the primary had made when called; False
    when ``timeout`` seconds pass first. True at once when ``replica`` is the primary's
    own pool (no ``read_url``) or a server that is not in recovery."""
    if replica is primary:
        return True
    written = await primary.fetchval(query("wal_written"))
    with anyio.move_on_after(timeout):
        # Replay advances in the replica's own process: nothing here to wait on but a poll.
        while not await replica.fetchval(query("wal_replayed"), written):  # noqa: ASYNC110
            await anyio.sleep(_CATCH_UP_POLL)
        return True
    return False


async def replica_settled(primary: ConnectionPool, replica: ConnectionPool) -> bool:
    """Give the replica a moment (a second at most) to replay what the primary committed,
    before a page re-reads it. False when it did not; an unreachable server is no error
    here (the page reads whatever it can)."""
    try:
        return await replica_caught_up(primary, replica, timeout=_SETTLE_SECONDS)
    except INFRASTRUCTURE_ERRORS:
        return False
