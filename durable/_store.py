"""One typed async function per named statement: the only code that talks SQL at runtime.

Statements come from ``durable/sql/queries.sql`` by name. asyncpg prepares each one once
per connection and reuses it, so the hot path is a single round trip with no parsing or
planning. JSON crosses the wire as text: the codec produces it, and pydantic parses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from durable.sql import query

__all__ = ["Claimed", "Store"]

Row = asyncpg.Record
Claimed = asyncpg.Record


class Store:
    """Typed access to the ``durable`` schema through an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # -- starting runs ---------------------------------------------------------------

    async def insert_run(
        self,
        *,
        run_id: UUID,
        workflow: str,
        version: int,
        input_json: str,
        queue: str,
        priority: int,
        tags: Sequence[str],
        idempotency_key: str | None,
        parent_run_id: UUID | None,
        parent_cursor: str | None,
        delay_seconds: float | None,
        timeout_seconds: float | None,
        traceparent: str | None,
        tracestate: str | None,
        conn: asyncpg.Connection | None = None,
    ) -> tuple[UUID, bool]:
        """Insert a run; return (id, created). An existing id or idempotency key wins."""
        args = (
            run_id, workflow, version, input_json, queue, priority, list(tags),
            idempotency_key, parent_run_id, parent_cursor, delay_seconds, timeout_seconds,
            traceparent, tracestate,
        )  # fmt: skip
        executor = conn or self.pool
        created = await executor.fetchval(query("insert_run"), *args)
        if created is not None:
            return created, True
        existing = await executor.fetchval(
            query("find_existing_run"), run_id, workflow, idempotency_key
        )
        if existing is None:  # the conflicting row vanished (pruned) between the statements
            raise RuntimeError(f"run {run_id} conflicted with a run that no longer exists")
        return existing, False

    async def latest_workflow_version(self, name: str) -> tuple[int, str] | None:
        row = await self.pool.fetchrow(query("latest_workflow_version"), name)
        return None if row is None else (row["version"], row["queue"])

    # -- workers ---------------------------------------------------------------------

    async def register_worker(
        self,
        worker_id: str,
        hostname: str,
        pid: int,
        queues: Sequence[str],
        concurrency: int,
        workflows: Sequence[tuple[str, int, str]],
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                query("register_worker"), worker_id, hostname, pid, list(queues), concurrency
            )
            if workflows:
                names, versions, wf_queues = zip(*workflows, strict=True)
                await conn.execute(
                    query("register_workflows"), list(names), list(versions), list(wf_queues)
                )

    async def unregister_worker(self, worker_id: str) -> None:
        await self.pool.execute(query("unregister_worker"), worker_id)

    async def heartbeat(self, worker_id: str, lease: float, run_ids: list[UUID]) -> set[UUID]:
        """Extend the leases of ``run_ids``; return the ones this worker still holds."""
        async with self.pool.acquire() as conn:
            await conn.execute(query("heartbeat_worker"), worker_id)
            if not run_ids:
                return set()
            rows = await conn.fetch(query("heartbeat_runs"), worker_id, lease, run_ids)
        return {row["id"] for row in rows}

    async def claim(
        self,
        worker_id: str,
        lease: float,
        limit: int,
        queues: Sequence[str],
        names: Sequence[str],
        versions: Sequence[int],
    ) -> list[Claimed]:
        return await self.pool.fetch(
            query("claim_runs"), worker_id, lease, limit, list(queues), list(names), list(versions)
        )

    async def next_wake(self) -> float | None:
        """Seconds until the next timer, lease expiry or delayed start, if any."""
        value: float | None = await self.pool.fetchval(query("next_wake"))
        return value

    async def release(self, worker_id: str, run_ids: list[UUID]) -> None:
        await self.pool.execute(query("release_runs"), worker_id, run_ids)

    # -- recording ---------------------------------------------------------------------

    async def record_step(
        self,
        run_id: UUID,
        attempt: int,
        *,
        key: str,
        seq: int,
        kind: str,
        name: str,
        status: str,
        output_json: str | None = None,
        error_json: str | None = None,
        step_attempt: int = 1,
        retry_in: float | None = None,
        started_at: datetime | None = None,
    ) -> tuple[bool, float | None]:
        """Write one record under the lease fence; return (written, retry_at epoch)."""
        row = await self.pool.fetchrow(
            query("record_step"),
            run_id, attempt, key, seq, kind, name, status, output_json, error_json,
            step_attempt, retry_in, started_at,
        )  # fmt: skip
        if row is None:
            return False, None
        return True, row["retry_at"]

    async def park(self, run_id: UUID, attempt: int, status: str, wake_at: datetime | None) -> bool:
        parked = await self.pool.fetchval(query("park_run"), run_id, attempt, status, wake_at)
        return parked is not None

    async def finish(
        self,
        run_id: UUID,
        attempt: int,
        status: str,
        output_json: str | None,
        error_json: str | None,
    ) -> bool:
        """Store the final status; False when the claim was lost (nothing written)."""
        row = await self.pool.fetchrow(
            query("finish_run"), run_id, attempt, status, output_json, error_json
        )
        return row is not None

    # -- reading -------------------------------------------------------------------------

    async def run_outcome(self, run_id: UUID) -> Row | None:
        return await self.pool.fetchrow(query("run_outcome"), run_id)

    async def get_run(self, run_id: UUID) -> tuple[Row | None, list[Row], list[Row], list[UUID]]:
        """The run row with its steps, events and child ids, read in one snapshot."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            run = await conn.fetchrow(query("get_run"), run_id)
            if run is None:
                return None, [], [], []
            steps = await conn.fetch(query("run_steps"), run_id)
            events = await conn.fetch(query("run_events"), run_id)
            children = [r["id"] for r in await conn.fetch(query("run_children"), run_id)]
        return run, steps, events, children

    async def list_runs(
        self,
        *,
        workflow: str | None,
        statuses: list[str] | None,
        tag: str | None,
        since: datetime | None,
        until: datetime | None,
        parent: UUID | None,
        queue: str | None,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Row]:
        after_at, after_id = after if after else (None, None)
        return await self.pool.fetch(
            query("list_runs"),
            workflow, statuses, tag, since, until, parent, queue, after_at, after_id, limit,
        )  # fmt: skip

    async def db_now(self) -> datetime:
        value: datetime = await self.pool.fetchval(query("db_now"))
        return value
