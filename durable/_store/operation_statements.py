"""The store's statements for schedules, run management and pruning (part of ``Store``).

Mixed into ``Store`` like ``QueueStatements``; the statements live in ``queries.sql``
under the "Operations" section. Methods that take ``conn`` run inside a caller's
transaction (``Store.transaction()``), so a schedule tick and the runs it starts, or a
retry and the retries of its failed children, commit together.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import UUID

import asyncpg

from durable._store.pool import ConnectionPool
from durable._store.rows import ScheduleRow
from durable.sql import query

__all__ = ["OperationStatements"]

Row = asyncpg.Record


class OperationStatements:
    """Schedules, retry, fork, pause, fast-forward and prune; ``Store`` provides ``pool``."""

    pool: ConnectionPool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside a transaction that commits on exit (rolls back on error)."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    # -- schedules -------------------------------------------------------------------

    async def upsert_schedule(
        self,
        *,
        name: str,
        workflow: str,
        cron: str,
        timezone: str,
        input_json: str,
        next_fire_at: datetime,
        overlap: str,
        catch_up: str,
        max_catch_up: int,
        jitter_seconds: float,
        paused: bool,
        source: str,
    ) -> None:
        await self.pool.execute(
            query("schedule_upsert"),
            name, workflow, cron, timezone, input_json, next_fire_at, overlap, catch_up,
            max_catch_up, jitter_seconds, paused, source,
        )  # fmt: skip

    async def get_schedule(self, name: str) -> ScheduleRow | None:
        row = await self.pool.fetchrow(query("schedule_get"), name)
        return None if row is None else ScheduleRow.of(row)

    async def list_schedules(self) -> list[ScheduleRow]:
        return [ScheduleRow.of(row) for row in await self.pool.fetch(query("schedule_list"))]

    async def set_schedule_paused(
        self, name: str, paused: bool, next_fire_at: datetime | None
    ) -> bool:
        row = await self.pool.fetchrow(query("schedule_set_paused"), name, paused, next_fire_at)
        return row is not None

    async def delete_schedule(self, name: str) -> bool:
        return await self.pool.fetchrow(query("schedule_delete"), name) is not None

    async def drop_decorator_schedules(self, workflows: Sequence[str]) -> list[str]:
        """Remove the ``@workflow(schedule=)`` schedules of ``workflows`` (which no longer
        declare one); return their names. API and built-in schedules are kept."""
        rows = await self.pool.fetch(query("schedule_drop_decorated"), list(workflows))
        return [row["name"] for row in rows]

    async def due_schedules(self, workflows: Sequence[str]) -> list[ScheduleRow]:
        rows = await self.pool.fetch(query("schedules_due"), list(workflows))
        return [ScheduleRow.of(row) for row in rows]

    async def next_schedule_wake(self, workflows: Sequence[str]) -> float | None:
        """Seconds until the next tick of these workflows' schedules (None: none)."""
        value: float | None = await self.pool.fetchval(
            query("schedules_next_wake"), list(workflows)
        )
        return value

    async def advance_schedule(
        self,
        conn: asyncpg.Connection,
        name: str,
        *,
        old_next: datetime | None,
        old_buffered: datetime | None,
        new_next: datetime,
        new_buffered: datetime | None,
        fired_at: datetime | None,
        run_id: UUID | None,
    ) -> bool:
        """Compare-and-set the schedule's ticks; False when another worker moved it first."""
        row = await conn.fetchrow(
            query("schedule_advance"),
            name, old_next, old_buffered, new_next, new_buffered, fired_at, run_id,
        )  # fmt: skip
        return row is not None

    async def set_schedule_last_run(
        self, name: str, run_id: UUID, conn: asyncpg.Connection | None = None
    ) -> None:
        await (conn or self.pool).execute(query("schedule_last_run"), name, run_id)

    # -- retry, fork, pause, fast-forward ------------------------------------------------

    async def lock_for_retry(self, conn: asyncpg.Connection, run_id: UUID) -> Row | None:
        return await conn.fetchrow(query("retry_lock"), run_id)

    async def steps_of(self, conn: asyncpg.Connection, run_id: UUID) -> list[Row]:
        return await conn.fetch(query("run_steps"), run_id)

    async def reset_failed(
        self, conn: asyncpg.Connection, run_id: UUID, keys: Sequence[str]
    ) -> bool:
        """Delete the failed records ``keys`` and make the failed run due again."""
        return await conn.fetchrow(query("retry_reset"), run_id, list(keys)) is not None

    async def fail_for_retry(
        self, conn: asyncpg.Connection, run_id: UUID, attempt: int, error_json: str, limit: int
    ) -> Row | None:
        """Fail the running run for an automatic retry when it has retries left (fenced by
        its claim); its ``auto_retries`` and ``deadline_at``, or None."""
        return await conn.fetchrow(query("fail_for_retry"), run_id, attempt, error_json, limit)

    async def schedule_run_retry(
        self,
        conn: asyncpg.Connection,
        run_id: UUID,
        delay: float,
        retries: int,
        deadline_at: datetime | None,
    ) -> None:
        await conn.execute(query("schedule_run_retry"), run_id, delay, retries, deadline_at)

    async def fork_run(
        self,
        source: UUID,
        new_id: UUID,
        before_seq: int,
        traceparent: str | None,
        tracestate: str | None,
    ) -> int | None:
        """Insert the fork with the source's records before ``before_seq``; return how
        many were copied (None: the source vanished)."""
        row = await self.pool.fetchrow(
            query("fork_run"), source, new_id, before_seq, traceparent, tracestate
        )
        return None if row is None else int(row["copied"])

    async def pause_run(self, run_id: UUID) -> Row | None:
        return await self.pool.fetchrow(query("pause_run"), run_id)

    async def resume_run(self, run_id: UUID) -> str | None:
        """Resume a paused run; its restored status (None: it was not paused)."""
        row = await self.pool.fetchrow(query("resume_run"), run_id)
        return None if row is None else str(row["status"])

    async def run_wait_state(self, run_id: UUID) -> Row | None:
        return await self.pool.fetchrow(query("run_wait_state"), run_id)

    async def fast_forward_timers(self, run_id: UUID) -> Row | None:
        return await self.pool.fetchrow(query("fast_forward_timers"), run_id)

    # -- pruning -------------------------------------------------------------------------

    async def prune_batch(
        self,
        older_than: float,
        statuses: Sequence[str],
        after: tuple[datetime, UUID] | None,
        limit: int,
        skip: Sequence[tuple[UUID, UUID]] = (),
    ) -> Row:
        """Delete one batch of old finished run trees: (deleted, scanned, last_at, last_id).
        Runs with an id in one of the ``skip`` ranges [lo, hi) are left alone."""
        after_at, after_id = after if after else (None, None)
        los, his = [lo for lo, _ in skip], [hi for _, hi in skip]
        row = await self.pool.fetchrow(
            query("prune_runs"), older_than, list(statuses), after_at, after_id, limit, los, his
        )
        assert row is not None  # an aggregate SELECT always returns one row
        return row
