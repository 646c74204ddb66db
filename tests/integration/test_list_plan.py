"""Listing and counting the runs of one resource read ``runs_resource_idx``, never every
run: a tenant's page must not cost a scan of all tenants' history."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from durable.sql import query
from tests.integration.test_claim_plan import _nodes, _plan

pytestmark = pytest.mark.anyio

_RUNS = """
INSERT INTO durable.runs (id, workflow_name, status, input, resource_id, created_at)
SELECT gen_random_uuid(), 'shop.checkout', 'completed', '{"args": [], "kwargs": {}}',
    'tenant-' || (g % 500), now() - g * interval '1 second'
FROM generate_series(1, 50000) AS g
"""


def _uses_resource_index(plan: dict[str, Any]) -> bool:
    return any(n.get("Index Name") == "runs_resource_idx" for n in _nodes(plan))


async def test_listing_one_resource_reads_its_index(db: asyncpg.Connection) -> None:
    await db.execute(_RUNS)
    await db.execute("ANALYZE durable.runs")
    args = (None, None, None, None, None, None, None, None, None, 51, "tenant-7")
    plan = await _plan(db, query("list_runs"), *args)
    assert _uses_resource_index(plan), plan
    rows = await db.fetch(query("list_runs"), *args)
    assert len(rows) == 51
    assert {r["resource_id"] for r in rows} == {"tenant-7"}
