"""What counts as infrastructure failing, and how background loops live through anything.

Infrastructure is the database being unreachable, restarted, overloaded or racing another
transaction: a dropped or terminated connection, a server shutting down or refusing
connections (SQLSTATE classes 08 and 57), out of resources (53), a system or internal
error of the server (58, XX), a serialization failure or deadlock (40001, 40P01), a lock
or statement timeout, a server that only reads (25006: a hot standby reached through a
multi-host URL, or an old primary during a failover), or the client library losing track
of a connection (including no host of a multi-host URL matching ``target_session_attrs``).
Raised by a store call, such an error is never a step's or a run's outcome (invariant 8):
the execution is abandoned to its lease, or the loop tries again.

Only ever matched around store calls: a workflow's own ``OSError`` (a partner API that
refuses connections) is its own business.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import asyncpg
from asyncpg import exceptions as pg

__all__ = [
    "INFRASTRUCTURE_ERRORS",
    "Backoff",
    "is_infrastructure",
    "report_loop_failure",
    "through_outages",
]

T = TypeVar("T")

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes TimeoutError and ConnectionError
    asyncpg.InterfaceError,  # the connection is closed or in an unusable state
    asyncpg.InternalClientError,  # e.g. "another operation is in progress" on a broken one
    asyncpg.PostgresConnectionError,  # class 08
    pg.OperatorInterventionError,  # class 57: admin shutdown, cannot connect now, canceled
    pg.InsufficientResourcesError,  # class 53: too many connections, disk full, no memory
    pg.PostgresSystemError,  # class 58: I/O errors of the server
    pg.InternalServerError,  # class XX
    pg.SerializationError,  # 40001
    pg.DeadlockDetectedError,  # 40P01
    pg.StatementCompletionUnknownError,  # 40003
    pg.LockNotAvailableError,  # 55P03: lock_timeout
    # 25006: the connection reached a server that cannot write (a standby, or one set to
    # read only); the pool discards it, and a new one may reach the new primary.
    pg.ReadOnlySQLTransactionError,
)


def is_infrastructure(exc: BaseException) -> bool:
    """True when ``exc``, raised by a store call, means the database failed, not the code."""
    return isinstance(exc, INFRASTRUCTURE_ERRORS)


class Backoff:
    """Bounded exponential backoff with full jitter, for one background loop.

    Each ``next()`` after a failure waits up to twice as long as the one before (between
    ``first`` and ``cap`` seconds, spread at random so workers do not retry in step);
    ``reset()`` after a success starts again from ``first``.
    """

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self.first = first
        self.cap = max(cap, first)
        self._ceiling = first

    def next(self) -> float:
        wait = random.uniform(self._ceiling / 2, self._ceiling)
        self._ceiling = min(self._ceiling * 2, self.cap)
        return wait

    def reset(self) -> None:
        self._ceiling = self.first

    async def pause(self, log: logging.Logger, what: str, exc: BaseException) -> None:
        """Report ``exc`` and sleep before the loop tries ``what`` again."""
        wait = self.next()
        report_loop_failure(log, what, exc, wait)
        await anyio.sleep(wait)


def report_loop_failure(
    log: logging.Logger, what: str, exc: BaseException, retry_in: float | None = None
) -> None:
    """Log a background loop's failure. The database failing is a warning; anything else is
    a bug in durable or a bad stored row, logged with its traceback, and the loop goes on
    (a worker never exits for it)."""
    then = "" if retry_in is None else f"; retrying in {retry_in:.2f}s"
    if is_infrastructure(exc):
        log.warning("%s failed (%s: %s)%s", what, type(exc).__name__, exc, then)
    else:
        log.error("%s failed unexpectedly%s", what, then, exc_info=exc)


async def through_outages(read: Callable[[], Awaitable[T]], log: logging.Logger, what: str) -> T:
    """``read()``, tried again after each infrastructure error (logged, with backoff). For
    a caller that waits on the database anyway, bounded by its own timeout: ``result()``
    and ``wait()`` go on through a failover or a terminated connection instead of raising
    it. Only for statements that are safe to send twice."""
    backoff: Backoff | None = None  # made on the first failure: reads are on hot paths
    while True:
        try:
            return await read()
        except INFRASTRUCTURE_ERRORS as exc:
            backoff = backoff or Backoff(cap=1.0)
            await backoff.pause(log, what, exc)
