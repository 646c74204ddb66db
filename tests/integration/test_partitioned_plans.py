"""In the partitioned layout the claim is still an index scan, and per-run statements read
one partition of ``durable.steps``.

The database is switched to the partitioned layout (1 h periods), filled with finished
runs spread over a day and a half of UUIDv7 ids (three steps each, so every partition holds
history) and a few due ones, ANALYZEd, and the real statements are EXPLAINed.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from durable._foundation.run_ids import new_run_id
from durable._store.partition_statements import partition_history
from durable.sql import query
from tests.integration.test_claim_plan import (
    _UNFINISHED,
    CLAIM_RUNS_INDEXES,
    NAMES,
    _assert_uses_claim_index,
    _nodes,
    _plan,
)

pytestmark = pytest.mark.anyio

HOURS = 36

# Run g started `(g - 0.5) * $3` seconds before the current hour began (in UTC, as the
# partitions are cut), so every partition that holds history holds a full hour of it
# whenever the test runs: one holding a minute's worth is rightly scanned in sequence.
_STARTED = (
    "(date_trunc('hour', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    " - (g - 0.5) * $3 * interval '1 second')"
)
# A v7 id per run, of its start, with random low bits.
_V7 = (
    f"overlay(durable.uuid7_floor({_STARTED})::text "
    "placing substr(md5(g::text), 1, 12) from 25 for 12)::uuid"
)

_FINISHED = f"""
INSERT INTO durable.runs (
    id, workflow_name, workflow_version, status, input, output, queue, attempt,
    created_at, started_at, finished_at, updated_at)
SELECT {_V7}, ($2::text[])[1 + g % 3], 1, 'completed', '{{"args": [], "kwargs": {{}}}}', '42',
    'default', 1, {_STARTED}, now(), now(), now()
FROM generate_series(1, $1::int) AS g
"""

_STEPS = """
INSERT INTO durable.steps (run_id, cursor_key, seq, kind, name, status, output)
SELECT r.id, 'step:s#' || k, k, 'step', 's', 'completed', '1'
FROM durable.runs AS r, generate_series(0, 2) AS k
WHERE r.status = 'completed'
"""


_EMPTY = """
SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
WHERE i.inhparent = 'durable.steps'::regclass AND c.reltuples <= 0
"""


async def _fill(db: asyncpg.Connection, finished: int) -> None:
    assert await partition_history(db, 3600.0, 2)
    await db.execute(
        "SELECT durable.ensure_history_partitions(now() - make_interval(hours => $1), now())",
        HOURS,
    )
    await db.execute(_FINISHED, finished, NAMES, (HOURS - 2) * 3600.0 / finished)
    await db.execute(_STEPS)
    await db.execute(_UNFINISHED, NAMES)
    await db.execute("ANALYZE durable.runs")
    await db.execute("ANALYZE durable.steps")


def _steps_scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in _nodes(plan) if str(n.get("Relation Name", "")).startswith("steps")]


async def test_claim_runs_uses_the_claim_index_and_indexes_on_every_partition(
    db: asyncpg.Connection,
) -> None:
    await _fill(db, 100_000)
    assert await db.fetchval("SELECT count(*) FROM durable.history_partitions()") > HOURS
    versions = [1] * len(NAMES)
    args = ("host:123:abcd1234", 30.0, 16, ["default"], NAMES, versions, 10)
    plan = await _plan(db, query("claim_runs"), *args)
    _assert_uses_claim_index(plan, "claim_runs", CLAIM_RUNS_INDEXES)
    shown = json.dumps(plan, indent=1)
    scans = _steps_scans(plan)
    assert scans, f"claim_runs no longer loads the records:\n{shown}"
    # The planner may well scan an empty partition (the default one, those ahead) in
    # sequence: nothing to read. Every partition that holds history is read by its index.
    seq = {n["Relation Name"] for n in scans if n["Node Type"] == "Seq Scan"}
    empty = {r["relname"] for r in await db.fetch(_EMPTY)}
    assert seq <= empty, f"claim_runs scans steps partitions {seq - empty} in full:\n{shown}"
    assert len(empty) < len(scans) / 2
    claimed = await db.fetch(query("claim_runs"), *args)
    assert len(claimed) == 8  # four pending and four sleeping runs whose wake_at passed


async def test_a_run_s_steps_are_read_from_its_partition_only(db: asyncpg.Connection) -> None:
    await _fill(db, 20_000)
    run_id = await db.fetchval(
        "SELECT id FROM durable.runs WHERE status = 'completed' ORDER BY id LIMIT 1 OFFSET 5000"
    )
    raw = await db.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query('run_steps')}", run_id)
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    shown = json.dumps(plan, indent=1)
    scans = _steps_scans(plan)
    assert len(scans) == 1, f"run_steps reads several partitions:\n{shown}"
    assert scans[0]["Node Type"] in ("Index Scan", "Bitmap Heap Scan"), shown
    (owner,) = await db.fetch(
        "SELECT name FROM durable.history_partitions() WHERE lo <= $1 AND hi > $1", run_id
    )
    assert scans[0]["Relation Name"] == owner["name"]
    assert len(await db.fetch(query("run_steps"), run_id)) == 3


async def test_new_ids_fall_in_a_created_partition(db: asyncpg.Connection) -> None:
    await _fill(db, 10)
    row = await db.fetchrow(
        "SELECT name FROM durable.history_partitions() WHERE lo <= $1 AND hi > $1", new_run_id()
    )
    assert row is not None
