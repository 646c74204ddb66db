"""The dashboard's hot reads stay index reads with a long history.

``durable.runs`` is filled with 100,000 finished runs (and a few live ones), ANALYZEd, and
each statement the runs page, the run page and the overview make is EXPLAINed: none may
scan the whole table, and each must go through the index meant for it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from durable._store.pool import ConnectionPool
from durable._store.store import Store
from durable.sql import query
from tests.integration.test_claim_plan import _fill, _nodes, _plan

pytestmark = pytest.mark.anyio

FINISHED = 100_000


def _indexes(plan: dict[str, Any], statement: str) -> set[str]:
    """The indexes the plan reads; fails when it scans all of durable.runs."""
    nodes = list(_nodes(plan))
    shown = json.dumps(plan, indent=1)
    seq = [n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "runs"]
    assert not seq, f"{statement} scans all of durable.runs:\n{shown}"
    return {n["Index Name"] for n in nodes if "Index Name" in n}


@pytest.fixture
async def big(db: asyncpg.Connection) -> asyncpg.Connection:
    await _fill(db, FINISHED)
    return db


async def test_runs_page_reads_one_keyset_range(big: asyncpg.Connection) -> None:
    sql = query("list_runs")
    # The last argument is list_runs' resource filter (none here).
    first = await _plan(big, sql, None, None, None, None, None, None, None, None, None, 51, None)
    assert "runs_created_idx" in _indexes(first, "list_runs (first page)")
    # A later page starts where the previous one ended, by (created_at, id).
    last = await big.fetchrow(
        "SELECT created_at, id FROM durable.runs ORDER BY created_at DESC, id DESC OFFSET 5000"
    )
    assert last is not None
    later = await _plan(
        big, sql, None, None, None, None, None, None, None, last["created_at"], last["id"], 51,
        None,
    )  # fmt: skip
    assert "runs_created_idx" in _indexes(later, "list_runs (a later page)")
    failed = await _plan(
        big, sql, None, ["failed"], None, None, None, None, None, None, None, 51, None
    )
    assert "runs_created_idx" in _indexes(failed, "list_runs (status filter)")


async def test_search_by_id_prefix_or_key_uses_indexes(big: asyncpg.Connection) -> None:
    some = await big.fetchval("SELECT id FROM durable.runs OFFSET 777 LIMIT 1")
    prefix = str(some).replace("-", "")[:7]
    low, high = UUID(prefix.ljust(32, "0")), UUID(prefix.ljust(32, "f"))
    plan = await _plan(big, query("find_runs"), low, high, prefix, 50)
    assert {"runs_pkey", "runs_idempotency_idx"} <= _indexes(plan, "find_runs")
    found = await big.fetch(query("find_runs"), low, high, prefix, 50)
    assert some in {r["id"] for r in found}


async def test_run_page_and_overview_reads_use_indexes(big: asyncpg.Connection) -> None:
    ids = [r["id"] for r in await big.fetch("SELECT id FROM durable.runs LIMIT 50")]
    assert "runs_pkey" in _indexes(await _plan(big, query("run_waits"), ids), "run_waits")
    since = datetime.now(UTC) - timedelta(hours=1)
    chart = await _plan(big, query("dashboard_throughput"), since, 120.0)
    assert "runs_created_idx" in _indexes(chart, "dashboard_throughput")
    stuck = await _plan(big, query("dashboard_stuck_runs"), 60.0, 50)
    assert "runs_claim_idx" in _indexes(stuck, "dashboard_stuck_runs")
    queues = await _plan(big, query("dashboard_queues"))
    assert "runs_claim_idx" in _indexes(queues, "dashboard_queues")


async def _rows_read(pool: ConnectionPool) -> int:
    """Rows of durable.runs read so far, by sequential scans and through its indexes."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        value: int = await conn.fetchval(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
            "FROM pg_stat_user_tables WHERE schemaname = 'durable' AND relname = 'runs'"
        )
        return value


async def test_a_deep_page_stays_a_short_read_on_a_warm_connection(
    big: asyncpg.Connection, database_url: str
) -> None:
    """asyncpg reuses list_runs' prepared statement; once Postgres switched it to a generic
    plan, the optional keyset filter could not bound the index scan, and a page 20,000 runs
    down read 20,000 index entries. The store plans list_runs per call."""
    pool = ConnectionPool(lambda: asyncpg.connect(database_url), max_size=1)
    await pool.open()
    try:
        store = Store(pool)
        deep = await big.fetchrow(
            "SELECT created_at, id FROM durable.runs ORDER BY created_at DESC, id DESC OFFSET 20000"
        )
        assert deep is not None
        after = None
        for _ in range(12):  # page down as `runs list` does: the plan cache goes generic
            rows = await store.list_runs(workflow=None, statuses=None, tag=None, since=None,
                                         until=None, parent=None, queue=None, after=after,
                                         limit=1001)  # fmt: skip
            after = (rows[999]["created_at"], rows[999]["id"])
        before = await _rows_read(pool)
        rows = await store.list_runs(workflow=None, statuses=None, tag=None, since=None,
                                     until=None, parent=None, queue=None,
                                     after=(deep["created_at"], deep["id"]), limit=51)  # fmt: skip
        assert len(rows) == 51
        read = await _rows_read(pool) - before
        assert read < 1000, f"a 51-row page read {read} rows of durable.runs"
    finally:
        await pool.close()
