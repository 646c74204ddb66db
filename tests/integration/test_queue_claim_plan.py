"""Queue limits keep the claim an index scan, with 100,000 finished runs present.

The unmanaged claim (``claim_runs``) and the managed-queue claim (``queue_candidates``, run
under the queue's lock) read due runs through ``runs_claim_idx``; the limit counts
(``queue_load``, ``running_keys``) never scan ``durable.runs`` either. Each statement is
checked with a custom plan for its real parameters and with the generic plan that a
prepared statement may switch to after a few executions. Then the statements run, to show
the plans read the right rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from durable.sql import query

pytestmark = pytest.mark.anyio

# The unmanaged claim reads by served workflow (runs_claim_workflow_idx) when the planner
# prefers it; either way it is an index scan.
CLAIM_INDEXES = {"runs_claim_idx", "runs_claim_workflow_idx"}
FINISHED = 100_000
NAMES = ["shop.checkout", "shop.refund", "mail.digest"]
VERSIONS = [1, 1, 1]
WORKER = "host:123:abcd1234"
MANAGED = "emails"

_FINISHED = """
INSERT INTO durable.runs (
    id, workflow_name, workflow_version, status, input, output, queue, priority, attempt,
    concurrency_key, wake_at, created_at, started_at, finished_at, updated_at)
SELECT gen_random_uuid(), ($2::text[])[1 + g % 3], 1,
    CASE WHEN g % 7 = 0 THEN 'failed' ELSE 'completed' END,
    '{"args": [], "kwargs": {}}', '42',
    CASE WHEN g % 2 = 0 THEN 'emails' ELSE 'default' END, g % 5, 1,
    CASE WHEN g % 4 = 0 THEN 'cust-' || (g % 50) END,
    NULL, now() - g * interval '1 second', now() - g * interval '1 second', now(), now()
FROM generate_series(1, $1::int) AS g
"""

# The live part: due runs in the managed queue (some keyed, one of them held by another
# worker's live lease) and in the unmanaged one, plus a future timer in each.
_UNFINISHED = """
INSERT INTO durable.runs (id, workflow_name, status, input, queue, priority, concurrency_key,
    wake_at, lease_owner, lease_expires_at, started_at)
SELECT gen_random_uuid(), ($1::text[])[1 + g % 3], s.status, '{"args": [], "kwargs": {}}',
    s.queue, g % 3, s.ckey, now() + s.offset_s * interval '1 second', s.owner,
    CASE WHEN s.owner IS NULL THEN NULL ELSE now() + s.offset_s * interval '1 second' END,
    CASE WHEN s.owner IS NULL THEN NULL ELSE now() END
FROM generate_series(1, 4) AS g,
    (VALUES ('pending', -1.0, NULL, 'emails', NULL),
            ('pending', -1.0, NULL, 'emails', 'cust-1'),
            ('sleeping', -0.5, NULL, 'emails', 'cust-2'),
            ('sleeping', 3600.0, NULL, 'emails', NULL),
            ('running', 30.0, 'other-worker', 'emails', 'cust-1'),
            ('pending', -1.0, NULL, 'default', NULL),
            ('sleeping', -0.5, NULL, 'default', NULL),
            ('waiting', NULL, NULL, 'default', NULL),
            ('running', 30.0, 'other-worker', 'default', NULL))
        AS s(status, offset_s, owner, queue, ckey)
"""


@pytest.fixture
async def filled(db: asyncpg.Connection) -> asyncpg.Connection:
    await db.execute(_FINISHED, FINISHED, NAMES)
    await db.execute(_UNFINISHED, NAMES)
    await db.execute(
        "INSERT INTO durable.queues (name, concurrency, rate_limit, rate_period_seconds) "
        "VALUES ($1, 10, 100, 1.0)",
        MANAGED,
    )
    await db.execute("ANALYZE durable.runs")
    await db.execute("ANALYZE durable.queues")
    return db


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


async def _plan(db: asyncpg.Connection, mode: str, sql: str, *args: Any) -> dict[str, Any]:
    async with db.transaction():
        await db.execute(f"SET LOCAL plan_cache_mode = {mode}")
        raw = await db.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    document = json.loads(raw) if isinstance(raw, str) else raw
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def _seq_scans_of_runs(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        n for n in _nodes(plan) if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "runs"
    ]


def _claim_index_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        n
        for n in _nodes(plan)
        if n.get("Index Name") in CLAIM_INDEXES
        and n["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
    ]


# (statement, its parameters, must it read through runs_claim_idx)
STATEMENTS: list[tuple[str, tuple[Any, ...], bool]] = [
    ("claim_runs", (WORKER, 30.0, 16, ["default"], NAMES, VERSIONS, 10), True),
    ("queue_candidates", (MANAGED, 24, NAMES, VERSIONS), True),
    ("queue_load", (MANAGED, 1.0), False),
    ("running_keys", (MANAGED, ["cust-1", "cust-2"]), False),
]


async def test_queue_claim_statements_stay_index_scans(filled: asyncpg.Connection) -> None:
    """One fill, every statement, custom and generic plans; all failures reported at once."""
    failures = []
    for mode in ("force_custom_plan", "force_generic_plan"):
        for name, args, needs_claim_index in STATEMENTS:
            plan = await _plan(filled, mode, query(name), *args)
            shown = json.dumps(plan, indent=1)
            if _seq_scans_of_runs(plan):
                failures.append(f"{name} ({mode}) scans all of durable.runs:\n{shown}")
            elif needs_claim_index and not _claim_index_scans(plan):
                failures.append(f"{name} ({mode}) does not use a claim index:\n{shown}")
    assert not failures, "\n\n".join(failures)


async def test_the_statements_read_the_right_rows(filled: asyncpg.Connection) -> None:
    db = filled
    async with db.transaction():
        candidates = await db.fetch(query("queue_candidates"), MANAGED, 24, NAMES, VERSIONS)
    # Four unkeyed pending, four cust-1 pending, four cust-2 sleeping runs are due; the
    # future timers and the runs leased by the other worker are not.
    assert len(candidates) == 12
    assert all(c["first_claim"] for c in candidates)
    assert sorted(c["concurrency_key"] or "" for c in candidates) == (
        [""] * 4 + ["cust-1"] * 4 + ["cust-2"] * 4
    )
    ids = [c["id"] for c in candidates]
    priorities = await db.fetch(
        "SELECT id, priority FROM durable.runs WHERE id = ANY($1::uuid[])", ids
    )
    by_id = {r["id"]: r["priority"] for r in priorities}
    ordered = [by_id[i] for i in ids]
    assert ordered == sorted(ordered, reverse=True), "candidates not in priority order"

    load = await db.fetchrow(query("queue_load"), MANAGED, 1.0)
    assert load is not None
    assert load["running"] == 4  # the other worker's four live leases in this queue
    assert load["recent"] == 0
    running = await db.fetch(query("running_keys"), MANAGED, ["cust-1", "cust-2"])
    assert {r["concurrency_key"]: r["running"] for r in running} == {"cust-1": 4}

    # The unmanaged claim takes only the unkeyed due runs of the queues it is given.
    claimed = await db.fetch(
        query("claim_runs"), WORKER, 30.0, 16, ["default"], NAMES, VERSIONS, 10
    )
    assert len(claimed) == 8
    assert {r["queue"] for r in claimed} == {"default"}
