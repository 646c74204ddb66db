"""The keys that ``docs/scaling.md``'s distribution plan relies on, read from the catalog.

The plan distributes the per-run tables by run id (co-located: a run's rows share a shard)
and keeps the small tables whole. A distributed table can only enforce a primary key or a
unique index that contains its distribution column, and a run's statements stay on one
shard only when they find rows by run id. So every per-run table's primary key and unique
indexes start with the run id, every foreign key between them follows it, and every table
of the schema has a place in the plan: a new table, or a new unique index that does not
start with the run id, fails here until the plan (and this test) say where it goes.
"""

from __future__ import annotations

import asyncpg
import pytest

from durable._store.partition_statements import partition_history

pytestmark = pytest.mark.anyio

# Distributed by run id, co-located with durable.runs: table -> its run id column.
PER_RUN = {"runs": "id", "steps": "run_id", "signals": "run_id", "events": "run_id"}
# Small, read everywhere, written rarely: a copy on every node.
REFERENCE = {
    "workflows",
    "queues",
    "clock",
    "partitioning",
    "schema_migrations",
    "webhook_endpoints",
}
# Written by the coordinator's loops only (schedules, worker heartbeats, rate windows).
# The lifecycle event log is one commit-ordered sequence for the whole database (its
# position is the writing transaction's id), so it stays whole, like its dispatch cursor.
COORDINATOR = {"schedules", "workers", "queue_starts", "event_log", "webhook_cursor"}
# Unique indexes of per-run tables that do not start with the run id, each with the
# plan's answer (docs/scaling.md, "Uniqueness that is not per run").
NOT_PER_RUN_UNIQUE = {"runs_idempotency_idx"}

_TABLES = """
SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'durable' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""

# Every unique index (primary keys included) of the top-level tables, with its columns.
_UNIQUE = """
SELECT t.relname AS table_name, i.relname AS index_name, x.indisprimary AS primary,
    array_agg(a.attname ORDER BY k.ord) AS columns
FROM pg_index AS x
JOIN pg_class AS t ON t.oid = x.indrelid
JOIN pg_class AS i ON i.oid = x.indexrelid
JOIN pg_namespace AS n ON n.oid = t.relnamespace
CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute AS a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE n.nspname = 'durable' AND x.indisunique AND NOT t.relispartition
GROUP BY t.relname, i.relname, x.indisprimary
"""

_FOREIGN = """
SELECT t.relname AS table_name, r.relname AS referenced,
    (SELECT array_agg(a.attname) FROM pg_attribute AS a
        WHERE a.attrelid = k.conrelid AND a.attnum = ANY(k.conkey)) AS columns,
    (SELECT array_agg(a.attname) FROM pg_attribute AS a
        WHERE a.attrelid = k.confrelid AND a.attnum = ANY(k.confkey)) AS referenced_columns
FROM pg_constraint AS k
JOIN pg_class AS t ON t.oid = k.conrelid
JOIN pg_class AS r ON r.oid = k.confrelid
JOIN pg_namespace AS n ON n.oid = t.relnamespace
WHERE n.nspname = 'durable' AND k.contype = 'f' AND NOT t.relispartition
"""


@pytest.fixture(params=["one table", "partitioned"])
async def schema(request: pytest.FixtureRequest, db: asyncpg.Connection) -> asyncpg.Connection:
    """The migrated schema, in both layouts of durable.steps."""
    if request.param == "partitioned":
        assert await partition_history(db, 86400.0, 2)
    return db


async def test_every_table_has_a_place_in_the_plan(schema: asyncpg.Connection) -> None:
    tables = {r["relname"] for r in await schema.fetch(_TABLES)}
    planned = set(PER_RUN) | REFERENCE | COORDINATOR
    assert tables - planned == set(), "tables the distribution plan does not place"
    assert planned - tables == set(), "the plan places tables the schema does not have"


async def test_per_run_keys_start_with_the_run_id(schema: asyncpg.Connection) -> None:
    rows = [r for r in await schema.fetch(_UNIQUE) if r["table_name"] in PER_RUN]
    primaries = {r["table_name"] for r in rows if r["primary"]}
    assert primaries == set(PER_RUN)  # every per-run table has a primary key
    wrong = {
        r["index_name"]: list(r["columns"])
        for r in rows
        if r["columns"][0] != PER_RUN[r["table_name"]]
    }
    assert set(wrong) == NOT_PER_RUN_UNIQUE, f"unique keys not led by the run id: {wrong}"


async def test_foreign_keys_between_per_run_tables_follow_the_run_id(
    schema: asyncpg.Connection,
) -> None:
    rows = await schema.fetch(_FOREIGN)
    assert rows, "signals and events reference durable.runs"
    for row in rows:
        assert row["table_name"] in PER_RUN, dict(row)
        assert row["referenced"] == "runs", dict(row)
        assert list(row["columns"]) == [PER_RUN[row["table_name"]]], dict(row)
        assert list(row["referenced_columns"]) == ["id"], dict(row)
