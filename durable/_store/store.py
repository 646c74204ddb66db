"""One typed async function per named statement: the only code that talks SQL at runtime.

Statements come from ``durable/sql/queries.sql`` by name. asyncpg prepares each one once
per connection and reuses it, so the hot path is a single round trip with no parsing or
planning. JSON crosses the wire as text: the codec produces it, and pydantic parses it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from durable._foundation.faults import INFRASTRUCTURE_ERRORS
from durable._foundation.metrics import QueueReadiness
from durable._foundation.views import RunDetail, RunSummary
from durable._store.operation_statements import OperationStatements
from durable._store.partition_statements import PartitionStatements
from durable._store.pool import ConnectionPool
from durable._store.queue_statements import QueueStatements
from durable._store.read_models import detail_from_rows, signal_infos, summary_from_row
from durable._store.record_writer import UNSTORABLE_ERRORS, Finish, PendingRecord, StepWrite
from durable._store.rows import ClaimedRun, RunOutcome
from durable._store.run_inserts import NewRun, insert_run
from durable._store.signal_statements import SignalStatements
from durable.sql import query

__all__ = ["LOOP_ERRORS", "TRANSIENT_ERRORS", "UNSTORABLE_ERRORS", "Store", "TakenSignal"]

# Infrastructure failing, raised by a store call (see _faults): worth retrying later,
# never a run's own failure. Both names are the one classification.
TRANSIENT_ERRORS = LOOP_ERRORS = INFRASTRUCTURE_ERRORS

Row = asyncpg.Record


class TakenSignal(NamedTuple):
    """What ``consume_signal`` found: the payload and the sender's trace context."""

    found: bool
    payload: str | None
    traceparent: str | None = None
    tracestate: str | None = None


class Store(QueueStatements, OperationStatements, SignalStatements, PartitionStatements):
    """Typed access to the ``durable`` schema through an asyncpg pool."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    # -- starting runs ---------------------------------------------------------------

    async def insert_run(
        self, run: NewRun, *, conn: asyncpg.Connection | None = None
    ) -> tuple[UUID, bool]:
        """Insert a run; return (id, created). An existing id or idempotency key wins,
        unless it belongs to another resource (``ValueError``: never another's handle)."""
        return await insert_run(conn or self.pool, run)

    async def latest_workflow_version(self, name: str) -> tuple[int, str, float | None] | None:
        """(version, queue, timeout seconds) of the newest version a worker served."""
        row = await self.pool.fetchrow(query("latest_workflow_version"), name)
        return None if row is None else (row["version"], row["queue"], row["timeout_seconds"])

    # -- workers ---------------------------------------------------------------------

    async def register_worker(
        self,
        worker_id: str,
        hostname: str,
        pid: int,
        queues: Sequence[str],
        concurrency: int,
        workflows: Sequence[tuple[str, int, str, int | None, float | None]],
    ) -> None:
        """Record a worker and the (name, version, queue, expected steps, timeout) it
        serves."""
        served = [f"{name}@{version}" for name, version, *_ in workflows]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                query("register_worker"),
                worker_id, hostname, pid, list(queues), concurrency, served,
            )  # fmt: skip
            if workflows:
                names, versions, wf_queues, expected, timeouts = zip(*workflows, strict=True)
                await conn.execute(
                    query("register_workflows"),
                    list(names), list(versions), list(wf_queues), list(expected), list(timeouts),
                )  # fmt: skip

    async def unregister_worker(self, worker_id: str) -> None:
        await self.pool.execute(query("unregister_worker"), worker_id)

    async def heartbeat(
        self, worker_id: str, lease: float, run_ids: list[UUID], stale_after: float
    ) -> tuple[set[UUID], bool]:
        """Extend the leases of ``run_ids`` and remove the rows of workers silent for
        ``stale_after`` seconds; return the runs this worker still holds, and whether its
        own row was still there (False: register again)."""
        # Two pooled statements, not one connection: each is sent again if its connection
        # turns out broken before sending (see ConnectionPool._one).
        known = await self.pool.fetchval(query("heartbeat_worker"), worker_id, stale_after)
        if not run_ids:
            return set(), known is not None
        rows = await self.pool.fetch(query("heartbeat_runs"), worker_id, lease, run_ids)
        return {row["id"] for row in rows}, known is not None

    async def claim(
        self,
        worker_id: str,
        lease: float,
        limit: int,
        queues: Sequence[str],
        names: Sequence[str],
        versions: Sequence[int],
        max_attempts: int = 10,
    ) -> list[ClaimedRun]:
        """Claim due runs; one whose last ``max_attempts`` executions lost their lease for
        nothing comes back with ``exhausted`` set and no records."""
        rows = await self.pool.fetch(
            query("claim_runs"), worker_id, lease, limit, list(queues), list(names),
            list(versions), max_attempts,
        )  # fmt: skip
        return [ClaimedRun.of(row) for row in rows]

    async def next_wake(
        self, queues: Sequence[str], names: Sequence[str], versions: Sequence[int]
    ) -> float | None:
        """Seconds until the next timer, lease expiry, delayed start or rate window of
        ``queues``, if any; 0 when a rate window ended while due runs of the served
        (name, version) pairs wait for it."""
        value: float | None = await self.pool.fetchval(
            query("next_wake"), list(queues), list(names), list(versions)
        )
        return value

    async def release(self, worker_id: str, run_ids: list[UUID]) -> None:
        await self.pool.execute(query("release_runs"), worker_id, run_ids)

    # -- recording ---------------------------------------------------------------------

    async def record_step(self, record: StepWrite) -> bool:
        """Write one record under its run's lease fence; False when the claim was lost."""
        written = await self.pool.fetchval(
            query("record_step"),
            record.run_id, record.run_attempt, record.key, record.seq, record.kind,
            record.name, record.status, record.output_json, record.error_json,
            record.step_attempt, record.retry_in, record.started_at,
        )  # fmt: skip
        return written is not None

    async def record_steps(self, records: Sequence[StepWrite]) -> set[Hashable]:
        """Write several runs' records in one statement; return the (run, key) written."""
        claims = {record.run_id: record.run_attempt for record in records}
        rows = await self.pool.fetch(
            query("record_steps"),
            list(claims), list(claims.values()),
            [r.run_id for r in records], [r.key for r in records], [r.seq for r in records],
            [r.kind for r in records], [r.name for r in records], [r.status for r in records],
            [r.output_json for r in records], [r.error_json for r in records],
            [r.step_attempt for r in records], [r.retry_in for r in records],
            [r.started_at for r in records],
        )  # fmt: skip
        return {(row["run_id"], row["cursor_key"]) for row in rows}

    async def record_values(
        self, run_id: UUID, attempt: int, values: Sequence[PendingRecord]
    ) -> bool:
        """Write the pending values of synchronous calls; False when the lease was lost."""
        fenced = await self.pool.fetchval(
            query("record_values"), run_id, attempt, *_value_columns(values)
        )
        return bool(fenced)

    async def park(
        self,
        run_id: UUID,
        attempt: int,
        status: str,
        wake_at: datetime | None,
        waiting_for: Sequence[str],
        pending: Sequence[PendingRecord],
    ) -> bool:
        """Park the run (after writing pending values) under its row lock; False when the
        lease was lost. See lock_run for why the lock comes first."""
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(query("lock_run"), run_id, attempt) is None:
                return False
            if pending:
                await conn.fetchval(
                    query("record_values"), run_id, attempt, *_value_columns(pending)
                )
            if status == "paused":  # durable.pause(): until engine.resume
                row = await conn.fetchrow(query("pause_self"), run_id, attempt)
            else:
                row = await conn.fetchrow(
                    query("park_run"), run_id, attempt, status, wake_at, list(waiting_for)
                )
        return row is not None

    async def finish_runs(self, finishes: Sequence[Finish]) -> set[Hashable]:
        """Store runs' final statuses in one statement; return the ids finished (a run
        whose claim was lost is left alone)."""
        rows = await self.pool.fetch(
            query("finish_runs"),
            [f.run_id for f in finishes], [f.run_attempt for f in finishes],
            [f.status for f in finishes], [f.output_json for f in finishes],
            [f.error_json for f in finishes], [f.cancel_children for f in finishes],
        )  # fmt: skip
        return {row["id"] for row in rows}

    # -- reading -------------------------------------------------------------------------

    async def run_outcome(self, run_id: UUID) -> RunOutcome | None:
        row = await self.pool.fetchrow(query("run_outcome"), run_id)
        return None if row is None else RunOutcome.of(row)

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

    async def run_history(
        self, run_id: UUID
    ) -> tuple[Row | None, list[Row], list[Row], list[UUID], list[Row]]:
        """``get_run``'s rows plus the run's signals, read in one snapshot (an export)."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            run = await conn.fetchrow(query("get_run"), run_id)
            if run is None:
                return None, [], [], [], []
            steps = await conn.fetch(query("run_steps"), run_id)
            events = await conn.fetch(query("run_events"), run_id)
            children = [r["id"] for r in await conn.fetch(query("run_children"), run_id)]
            signals = await conn.fetch(query("run_signals"), run_id)
        return run, steps, events, children, signals

    async def run_detail(self, run_id: UUID) -> RunDetail | None:
        """Everything recorded about a run, read in one snapshot (None: no such run)."""
        run, steps, events, children, signals = await self.run_history(run_id)
        if run is None:
            return None
        detail = detail_from_rows(run, steps, events, children)  # type: ignore[arg-type]
        return dataclasses.replace(detail, signals=signal_infos(signals))  # type: ignore[arg-type]

    async def list_run_summaries(self, **filters: Any) -> list[RunSummary]:
        """``list_runs`` as the summaries ``client.list_runs`` pages through."""
        return [summary_from_row(row) for row in await self.list_runs(**filters)]  # type: ignore[arg-type]

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
        resource_id: str | None = None,
        ascending: bool = False,
    ) -> list[Row]:
        after_at, after_id = after if after else (None, None)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(query("custom_plans"))
            return await conn.fetch(
                query("list_runs_asc") if ascending else query("list_runs"),
                workflow, statuses, tag, since, until, parent, queue, after_at, after_id, limit,
                resource_id,
            )  # fmt: skip

    async def count_runs(
        self,
        *,
        workflow: str | None,
        statuses: list[str] | None,
        tag: str | None,
        since: datetime | None,
        until: datetime | None,
        parent: UUID | None,
        queue: str | None,
        resource_id: str | None,
    ) -> int:
        count: int = await self.pool.fetchval(
            query("count_runs"), workflow, statuses, tag, since, until, parent, queue, resource_id
        )
        return count

    async def delete_run(self, run_id: UUID) -> Row:
        """Delete a finished run's tree; (found, unfinished, deleted) counts."""
        row = await self.pool.fetchrow(query("delete_run"), run_id)
        assert row is not None  # scalar sub-selects always give a row
        return row

    async def list_workflows(self) -> list[Row]:
        return await self.pool.fetch(query("list_workflows"))

    async def db_now(self) -> datetime:
        value: datetime = await self.pool.fetchval(query("db_now"))
        return value

    async def shift_clock(self, seconds: float) -> float:
        """Move ``durable.now()`` forward for every connection; return the total offset."""
        offset: float = await self.pool.fetchval(query("shift_clock"), seconds)
        return offset

    async def next_timer(self) -> float | None:
        """Seconds until the earliest sleeping run or delayed start wakes (None: none)."""
        value: float | None = await self.pool.fetchval(query("next_timer"))
        return value

    async def count_due_runs(self) -> int:
        count: int = await self.pool.fetchval(query("count_due_runs"))
        return count

    async def count_ready_runs(self, queues: Sequence[str]) -> list[QueueReadiness]:
        """(queue, ready, lag) of due-but-unclaimed runs, for the queue-depth gauges."""
        rows = await self.pool.fetch(query("count_ready_runs"), list(queues))
        return [QueueReadiness(row["queue"], row["ready"], row["lag"]) for row in rows]

    # -- signals, events, cancel -------------------------------------------------------

    async def signal_wait_type(self, run_id: UUID, name: str) -> str | None:
        value: str | None = await self.pool.fetchval(query("signal_wait_type"), run_id, name)
        return value

    async def send_signal(
        self,
        run_id: UUID,
        name: str,
        payload_json: str,
        idempotency_key: str | None,
        traceparent: str | None = None,
        tracestate: str | None = None,
    ) -> Row | None:
        """Store a signal with its sender's trace context; None when there is no such run."""
        return await self.pool.fetchrow(
            query("send_signal"), run_id, name, payload_json, idempotency_key,
            traceparent, tracestate,
        )  # fmt: skip

    async def consume_signal(
        self,
        run_id: UUID,
        attempt: int,
        name: str,
        key: str,
        seq: int,
        deadline: datetime | None,
        only: int | None = None,
    ) -> TakenSignal:
        """Consume the oldest usable buffered signal (or signal seq ``only``) into the
        wait's record: found, its payload, and the trace context it was sent from."""
        row = await self.pool.fetchrow(
            query("consume_signal"), run_id, attempt, name, key, seq, deadline, only
        )
        if row is None:
            return TakenSignal(False, None)
        return TakenSignal(True, row["output"], row["traceparent"], row["tracestate"])

    async def cancel(self, run_id: UUID) -> list[UUID]:
        """Cancel the run and its unfinished descendants; return the ids cancelled."""
        return [row["id"] for row in await self.cancel_runs(run_id)]

    async def cancel_runs(self, run_id: UUID) -> list[Row]:
        """``cancel``, returning the (id, workflow_name) of every run cancelled."""
        return await self.pool.fetch(query("cancel_run"), run_id)

    async def run_by_key(self, workflow: str, idempotency_key: str) -> UUID | None:
        """The run of ``workflow`` started with ``idempotency_key``, if any."""
        found: UUID | None = await self.pool.fetchval(
            query("run_by_key"), workflow, idempotency_key
        )
        return found

    async def run_resource(self, run_id: UUID) -> tuple[bool, str | None]:
        """Whether the run exists, and the resource it belongs to."""
        row = await self.pool.fetchrow(query("run_resource"), run_id)
        return (False, None) if row is None else (True, row["resource_id"])

    async def run_status(self, run_id: UUID) -> str | None:
        status: str | None = await self.pool.fetchval(query("run_exists"), run_id)
        return status

    async def set_event(
        self, run_id: UUID, attempt: int, key: str, value_json: str, cursor: str, seq: int
    ) -> bool:
        row = await self.pool.fetchrow(
            query("set_event"), run_id, attempt, key, value_json, cursor, seq
        )
        return row is not None

    async def set_progress(
        self,
        run_id: UUID,
        attempt: int,
        fraction: float | None,
        message: str | None,
        key: str,
        seq: int,
        value_json: str,
    ) -> bool:
        """Store a run's declared progress and record the call; False: the claim is lost."""
        row = await self.pool.fetchrow(
            query("set_progress"), run_id, attempt, fraction, message, key, seq, value_json
        )
        return row is not None

    async def progress_of_run(self, run_id: UUID) -> Row | None:
        return await self.pool.fetchrow(query("progress_of_run"), run_id)

    async def get_event(self, run_id: UUID, key: str) -> str | None:
        value: str | None = await self.pool.fetchval(query("get_event"), run_id, key)
        return value

    async def watch_progress(self, run_id: UUID, change: int, seconds: float) -> None:
        """Start (+1), renew (0) or end (-1) a wait on the run's step records."""
        await self.pool.execute(query("watch_progress"), run_id, change, seconds)

    async def run_progress(
        self, run_id: UUID, step: str | None, signal: str | None, event: str | None
    ) -> Row | None:
        return await self.pool.fetchrow(query("run_progress"), run_id, step, signal, event)


def _value_columns(values: Sequence[PendingRecord]) -> tuple[list[Any], ...]:
    """record_values' column arrays: keys, positions, kinds, names and outputs."""
    return (
        [v.key for v in values],
        [v.seq for v in values],
        [v.kind for v in values],
        [v.name for v in values],
        [v.output_json for v in values],
    )
