"""The claim and next-wake statements read only unfinished runs, through ``runs_claim_idx``.

Finished history grows without bound; a claim that scanned it would slow every worker as
the table grows. These tests fill ``durable.runs`` with finished runs and a few due ones,
ANALYZE, and check the real statements' plans: an index (or bitmap) scan on the partial
claim index, never a sequential scan of ``durable.runs``. The claim itself reads through
``runs_claim_workflow_idx``, one served (workflow, version) at a time, so thousands of due
runs of workflows the worker does not serve cost it nothing (EXPLAIN ANALYZE counts the
rows it reads).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from durable.sql import query

pytestmark = pytest.mark.anyio

CLAIM_INDEX = "runs_claim_idx"
# claim_runs reads either index, as the planner prefers: by wake order, or by served
# workflow (runs_claim_workflow_idx); both bound the rows it reads.
CLAIM_RUNS_INDEXES = (CLAIM_INDEX, "runs_claim_workflow_idx")
NAMES = ["shop.checkout", "shop.refund", "mail.digest"]

_FINISHED = """
INSERT INTO durable.runs (
    id, workflow_name, workflow_version, status, input, output, error, queue, attempt,
    wake_at, created_at, started_at, finished_at, updated_at)
SELECT gen_random_uuid(), ($2::text[])[1 + g % 3], 1,
    CASE WHEN g % 7 = 0 THEN 'failed' ELSE 'completed' END,
    '{"args": [], "kwargs": {}}', '42', NULL, 'default', 1,
    NULL, now() - g * interval '1 second', now() - g * interval '1 second', now(), now()
FROM generate_series(1, $1::int) AS g
"""

# The live part of a busy table: due work, future timers, leases held by other workers.
_UNFINISHED = """
INSERT INTO durable.runs (id, workflow_name, status, input, queue, wake_at, lease_owner,
    lease_expires_at)
SELECT gen_random_uuid(), ($1::text[])[1 + g % 3], s.status, '{"args": [], "kwargs": {}}',
    'default', now() + s.offset_s * interval '1 second', s.owner,
    CASE WHEN s.owner IS NULL THEN NULL ELSE now() + s.offset_s * interval '1 second' END
FROM generate_series(1, 4) AS g,
    (VALUES ('pending', -1.0, NULL), ('sleeping', -0.5, NULL), ('sleeping', 3600.0, NULL),
            ('waiting', NULL, NULL), ('running', 30.0, 'other-worker'))
        AS s(status, offset_s, owner)
"""


async def _fill(db: asyncpg.Connection, finished: int) -> float:
    """Insert the runs and ANALYZE; return the seconds it took."""
    began = time.perf_counter()
    await db.execute(_FINISHED, finished, NAMES)
    await db.execute(_UNFINISHED, NAMES)
    await db.execute("ANALYZE durable.runs")
    return time.perf_counter() - began


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


async def _plan(db: asyncpg.Connection, sql: str, *args: Any) -> dict[str, Any]:
    raw = await db.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    document = json.loads(raw) if isinstance(raw, str) else raw
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def _assert_uses_claim_index(
    plan: dict[str, Any], statement: str, indexes: tuple[str, ...] = (CLAIM_INDEX,)
) -> None:
    nodes = list(_nodes(plan))
    shown = json.dumps(plan, indent=1)
    seq_scans = [
        n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "runs"
    ]
    assert not seq_scans, f"{statement} scans all of durable.runs:\n{shown}"
    via_index = [
        n
        for n in nodes
        if n.get("Index Name") in indexes
        and n["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
    ]
    assert via_index, f"{statement} does not read durable.runs through {indexes}:\n{shown}"


@pytest.mark.parametrize("finished", [10_000, 100_000])
async def test_claim_runs_uses_the_claim_index(db: asyncpg.Connection, finished: int) -> None:
    await _fill(db, finished)
    versions = [1] * len(NAMES)
    plan = await _plan(
        db, query("claim_runs"), "host:123:abcd1234", 30.0, 16, ["default"], NAMES, versions, 10
    )
    # With few runs due either claim index serves; with many due elsewhere, see below.
    _assert_uses_claim_index(plan, "claim_runs", CLAIM_RUNS_INDEXES)
    # The plan is not only cheap but right: it claims the due runs and nothing else.
    claimed = await db.fetch(
        query("claim_runs"), "host:123:abcd1234", 30.0, 16, ["default"], NAMES, versions, 10
    )
    assert len(claimed) == 8  # four pending and four sleeping runs whose wake_at passed


SERVED = (["default"], NAMES, [1] * len(NAMES))

# A rate-limited 'default' queue whose window ended an hour ago, with no claim since.
_ENDED_WINDOW = """
WITH q AS (INSERT INTO durable.queues (name, rate_limit, rate_period_seconds)
    VALUES ('default', 5, 60.0) RETURNING name)
INSERT INTO durable.queue_starts (queue, started_at, run_id)
SELECT name, now() - interval '1 hour', gen_random_uuid() FROM q
"""


@pytest.mark.parametrize("finished", [10_000, 100_000])
async def test_next_wake_uses_the_claim_index(db: asyncpg.Connection, finished: int) -> None:
    await _fill(db, finished)
    plan = await _plan(db, query("next_wake"), *SERVED)
    _assert_uses_claim_index(plan, "next_wake")
    seconds = await db.fetchval(query("next_wake"), *SERVED)
    assert 0 < seconds <= 30.0  # the other worker's lease expires first


@pytest.mark.parametrize("finished", [10_000, 100_000])
async def test_next_wake_after_an_ended_window_uses_the_claim_index(
    db: asyncpg.Connection, finished: int
) -> None:
    await _fill(db, finished)
    await db.execute(_ENDED_WINDOW)
    await db.execute("ANALYZE durable.queues, durable.queue_starts")
    plan = await _plan(db, query("next_wake"), *SERVED)
    _assert_uses_claim_index(plan, "next_wake")
    # Pending runs awaiting their first claim are due: the worker claims now.
    assert await db.fetchval(query("next_wake"), *SERVED) == 0.0


# Due runs of a workflow no worker here serves: the claim must not read them at all.
_FOREIGN_DUE = """
INSERT INTO durable.runs (id, workflow_name, status, input, queue, wake_at)
SELECT gen_random_uuid(), 'elsewhere.report', 'pending', '{"args": [], "kwargs": {}}',
    'default', now() - g * interval '1 millisecond'
FROM generate_series(1, $1::int) AS g
"""


def _rows_read(plan: dict[str, Any]) -> int:
    """Rows the plan's scans of durable.runs produced or filtered out (EXPLAIN ANALYZE)."""
    return sum(
        int(n.get("Actual Rows", 0) * n.get("Actual Loops", 1))
        + int(n.get("Rows Removed by Filter", 0) + n.get("Rows Removed by Index Recheck", 0))
        for n in _nodes(plan)
        if n.get("Relation Name") == "runs" or n.get("Index Name", "").startswith("runs_")
    )


@pytest.mark.parametrize("plan_mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("foreign", [0, 8_500])
async def test_claim_reads_no_due_run_of_an_unserved_workflow(
    db: asyncpg.Connection, foreign: int, plan_mode: str
) -> None:
    await _fill(db, 10_000)
    await db.execute(_FOREIGN_DUE, foreign)
    await db.execute("ANALYZE durable.runs")
    # A worker's prepared claim may go generic after five runs: both plans must hold.
    await db.execute(f"SET plan_cache_mode = {plan_mode}")
    args = ("host:123:abcd1234", 30.0, 16, ["default"], NAMES, [1] * len(NAMES), 10)
    analyzed = db.transaction()  # EXPLAIN ANALYZE claims for real: rolled back
    await analyzed.start()
    try:
        raw = await db.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query('claim_runs')}", *args)
    finally:
        await analyzed.rollback()
    document = json.loads(raw) if isinstance(raw, str) else raw
    plan: dict[str, Any] = document[0]["Plan"]
    shown = json.dumps(plan, indent=1)
    assert any(n.get("Index Name") == "runs_claim_workflow_idx" for n in _nodes(plan)), shown
    assert not any(n["Node Type"] == "Seq Scan" for n in _nodes(plan)), shown
    # Eight served runs are due: however many others are, the claim reads a few dozen rows.
    assert _rows_read(plan) <= 64, shown
    claimed = await db.fetch(query("claim_runs"), *args)
    assert len(claimed) == 8
    assert {row["workflow_name"] for row in claimed} <= set(NAMES)
