"""The queue-depth gauges' statement counts due-but-unclaimed runs through the claim index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from durable.sql import query

pytestmark = pytest.mark.anyio

_RUNS = """
INSERT INTO durable.runs (id, workflow_name, status, input, queue, wake_at, lease_owner,
    finished_at)
SELECT gen_random_uuid(), 'wf', s.status, '{"args": [], "kwargs": {}}', s.queue,
    durable.now() + s.offset_s * interval '1 second', s.owner,
    CASE WHEN s.status = 'completed' THEN now() END
FROM generate_series(1, $1::int) AS g,
    (VALUES ('completed', NULL, NULL, 'a'),
            ('pending', -10.0, NULL, 'a'),        -- ready, waited 10 s
            ('sleeping', -2.0, NULL, 'b'),        -- ready
            ('sleeping', 3600.0, NULL, 'a'),      -- a timer in the future
            ('waiting', NULL, NULL, 'a'),         -- waits for a signal
            ('running', 30.0, 'w', 'a'),          -- leased to a worker
            ('running', -1.0, 'dead', 'b'),       -- expired lease: ready again
            ('pending', -5.0, NULL, 'other'))     -- a queue this worker does not serve
        AS s(status, offset_s, owner, queue)
"""


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


async def test_count_ready_runs_counts_only_due_unclaimed_runs(db: asyncpg.Connection) -> None:
    await db.execute(_RUNS, 2)
    rows = await db.fetch(query("count_ready_runs"), ["a", "b"])
    by_queue = {row["queue"]: (row["ready"], row["lag"]) for row in rows}
    assert by_queue.keys() == {"a", "b"}
    assert by_queue["a"][0] == 2
    assert by_queue["b"][0] == 4
    assert 10 <= by_queue["a"][1] < 15
    assert 2 <= by_queue["b"][1] < 7


async def test_count_ready_runs_reads_the_claim_index(db: asyncpg.Connection) -> None:
    await db.execute(_RUNS, 5_000)
    await db.execute("ANALYZE durable.runs")
    raw = await db.fetchval(f"EXPLAIN (FORMAT JSON) {query('count_ready_runs')}", ["a", "b"])
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    nodes = list(_nodes(plan))
    shown = json.dumps(plan, indent=1)
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], shown
    assert any(n.get("Index Name") == "runs_claim_idx" for n in nodes), shown
