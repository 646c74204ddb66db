"""The event log's position is safe to follow: an event whose transaction began writing
first but commits last is never skipped by a reader that already read later commits.

Two real transactions on the migrated schema: A changes a run (its event takes the lower
xid) and stays open; B changes another run and commits. A sequence-ordered reader would
return B's event and then pass A's for ever; ``events_after`` holds B back until A ends.
"""

from __future__ import annotations

import uuid
from uuid import UUID

import asyncpg
import pytest

from durable._client.event_stream import EventFilter, read_events
from durable._store.pool import ConnectionPool

pytestmark = pytest.mark.anyio

INSERT_RUN = "INSERT INTO durable.runs (id, workflow_name, input) VALUES ($1, 'log.flow', '{}')"
START = "UPDATE durable.runs SET status = 'running', started_at = now() WHERE id = $1"
EVERYTHING = EventFilter(workflows=None, run_id=None, kinds=None)


async def _runs(db: asyncpg.Connection, n: int) -> list[UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    for run_id in ids:
        await db.execute(INSERT_RUN, run_id)
    return ids


async def test_a_late_commit_below_a_read_position_is_not_skipped(
    db: asyncpg.Connection, database_url: str
) -> None:
    a_run, b_run = await _runs(db, 2)
    pool = ConnectionPool(lambda: asyncpg.connect(database_url), max_size=2)
    await pool.open()
    a = await asyncpg.connect(database_url)
    try:
        tx = a.transaction()
        await tx.start()
        await a.execute(START, a_run)  # A's event: the lower xid, not committed
        await db.execute(START, b_run)  # B's event: committed
        held = await read_events(pool, (0, 0), EVERYTHING)
        assert held.events == []  # B waits behind A's open transaction
        assert held.held_back
        await tx.commit()
        # Other transactions on the server may hold B back a little longer: read on.
        seen, position = [], held.position
        while len(seen) < 2:
            batch = await read_events(pool, position, EVERYTHING)
            seen += [(e.run_id, e.kind) for e in batch.events]
            position = batch.position
        assert seen == [(a_run, "run.started"), (b_run, "run.started")]
        again = await read_events(pool, position, EVERYTHING)
        assert again.events == []
    finally:
        await a.close()
        await pool.close()


async def test_a_transaction_in_another_database_holds_nothing_back(
    db: asyncpg.Connection, database_url: str, server_dsn: str
) -> None:
    """The horizon ignores transactions that pg_stat_activity places in other databases
    (they cannot write this event log): one left open there delays nothing here."""
    (run_id,) = await _runs(db, 1)
    pool = ConnectionPool(lambda: asyncpg.connect(database_url), max_size=1)
    await pool.open()
    elsewhere = await asyncpg.connect(server_dsn)
    try:
        tx = elsewhere.transaction()
        await tx.start()
        await elsewhere.fetchval("SELECT pg_current_xact_id()")  # holds an xid, stays open
        await db.execute(START, run_id)
        batch = await read_events(pool, (0, 0), EVERYTHING)
        assert [(e.run_id, e.kind) for e in batch.events] == [(run_id, "run.started")]
        await tx.rollback()
    finally:
        await elsewhere.close()
        await pool.close()


async def test_a_rolled_back_transition_leaves_no_event(
    db: asyncpg.Connection, database_url: str
) -> None:
    (run_id,) = await _runs(db, 1)
    tx = db.transaction()
    await tx.start()
    await db.execute(START, run_id)
    await tx.rollback()
    count = await db.fetchval("SELECT count(*) FROM durable.event_log WHERE run_id = $1", run_id)
    assert count == 0


async def test_only_status_changes_and_step_outcomes_are_events(db: asyncpg.Connection) -> None:
    (run_id,) = await _runs(db, 1)
    await db.execute(START, run_id)
    await db.execute("UPDATE durable.runs SET lease_expires_at = now() WHERE id = $1", run_id)
    await db.execute("UPDATE durable.runs SET status = 'running' WHERE id = $1", run_id)
    for key, kind, status in [
        ("now#0", "now", "completed"),
        ("sleep#0", "sleep", "completed"),
        ("step:a#0", "step", "retrying"),
    ]:
        await db.execute(
            "INSERT INTO durable.steps (run_id, cursor_key, seq, kind, name, status) "
            "VALUES ($1, $2, 0, $3, 'a', $4)",
            run_id, key, kind, status,
        )  # fmt: skip
    await db.execute(
        "UPDATE durable.steps SET status = 'completed', attempt = 2 "
        "WHERE run_id = $1 AND cursor_key = 'step:a#0'",
        run_id,
    )
    await db.execute("UPDATE durable.steps SET output = '1' WHERE run_id = $1", run_id)
    await db.execute("UPDATE durable.runs SET status = 'sleeping' WHERE id = $1", run_id)
    await db.execute("UPDATE durable.runs SET status = 'running' WHERE id = $1", run_id)
    await db.execute("UPDATE durable.runs SET status = 'completed' WHERE id = $1", run_id)
    rows = await db.fetch(
        "SELECT kind, step_key, attempt FROM durable.event_log WHERE run_id = $1 ORDER BY xid, seq",
        run_id,
    )
    assert [(r["kind"], r["step_key"]) for r in rows] == [
        ("run.started", None),
        ("step.retrying", "step:a#0"),
        ("step.completed", "step:a#0"),
        ("run.suspended", None),
        ("run.resumed", None),
        ("run.completed", None),
    ]
    await db.execute("DELETE FROM durable.runs WHERE id = $1", run_id)
    left = await db.fetchval("SELECT count(*) FROM durable.event_log WHERE run_id = $1", run_id)
    assert left == 0


async def test_step_events_survive_the_switch_to_partitioned_history(
    db: asyncpg.Connection,
) -> None:
    """The partitioned layout replaces durable.steps; its step triggers come back."""
    from durable._store.partition_statements import partition_history

    assert await partition_history(db, 86400.0, 2)
    (run_id,) = await _runs(db, 1)
    await db.execute(START, run_id)
    await db.execute(
        "INSERT INTO durable.steps (run_id, cursor_key, seq, kind, name, status) "
        "VALUES ($1, 'step:a#0', 0, 'step', 'a', 'completed')",
        run_id,
    )
    kinds = await db.fetch(
        "SELECT kind FROM durable.event_log WHERE run_id = $1 ORDER BY xid, seq", run_id
    )
    assert [r["kind"] for r in kinds] == ["run.started", "step.completed"]


async def test_statements_changing_many_rows_log_one_event_per_change(
    db: asyncpg.Connection,
) -> None:
    """Events are appended per statement (migration 0016): a statement that changes many
    runs or steps, an upsert among them, logs exactly the events the rows' changes are."""
    ids = await _runs(db, 300)
    half = ids[:150]
    await db.execute("UPDATE durable.runs SET status = 'running' WHERE id = ANY($1)", ids)
    # A statement in which only half the rows change status: the rest log nothing.
    await db.execute(
        "UPDATE durable.runs SET status = CASE WHEN id = ANY($2) THEN 'sleeping' ELSE status "
        "END, updated_at = now() WHERE id = ANY($1)",
        ids, half,
    )  # fmt: skip
    upsert = (
        "INSERT INTO durable.steps AS s (run_id, cursor_key, seq, kind, name, status, attempt) "
        "SELECT id, 'step:a#0', 0, 'step', 'a', $2, $3 FROM unnest($1::uuid[]) AS id "
        "ON CONFLICT (run_id, cursor_key) DO UPDATE SET status = excluded.status, "
        "attempt = excluded.attempt"
    )
    await db.execute(upsert, ids, "retrying", 1)  # inserted: the insert trigger
    await db.execute(upsert, ids, "completed", 2)  # replaced: the update trigger
    await db.execute(upsert, ids, "completed", 2)  # unchanged: no event
    await db.execute("UPDATE durable.runs SET status = 'completed' WHERE id = ANY($1)", ids)
    rows = await db.fetch(
        "SELECT run_id, kind, attempt FROM durable.event_log WHERE run_id = ANY($1) "
        "ORDER BY xid, seq",
        ids,
    )
    logged: dict[UUID, list[tuple[str, int | None]]] = {run_id: [] for run_id in ids}
    for row in rows:
        logged[row["run_id"]].append((row["kind"], row["attempt"]))
    steps = [("step.retrying", 1), ("step.completed", 2)]
    for run_id in ids:
        started: list[tuple[str, int | None]] = [("run.started", 0)]
        parked = [("run.suspended", 0)] if run_id in half else []
        finished: list[tuple[str, int | None]] = [("run.completed", 0)]
        assert logged[run_id] == started + parked + steps + finished
