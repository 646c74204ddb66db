"""10,000 parked runs cost the worker nothing: no memory, no claims until due, no delay
for a fresh run."""

from __future__ import annotations

import gc

import anyio
import asyncpg
import pytest

from durable import workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.waits.probes import resident_kib

pytestmark = pytest.mark.anyio

PARKED = 10_000
MAX_GROWTH_KIB = 5 * 1024


@workflow
async def parked_for_a_month() -> str:
    return "woke"


@workflow
async def fresh() -> str:
    return "fresh"


async def test_ten_thousand_parked_runs_cost_the_worker_nothing(
    make_engine: EngineFactory, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        async with make_engine(parked_for_a_month, fresh, poll_interval=0.05) as engine:
            worker = engine.worker
            assert worker is not None
            assert await (await engine.start(fresh)).result(timeout=5) == "fresh"  # warm up
            gc.collect()
            before = resident_kib()

            await conn.execute(
                """
                INSERT INTO durable.runs
                    (id, workflow_name, workflow_version, status, input, wake_at)
                SELECT gen_random_uuid(), $1, 1, 'sleeping', '{"args": [], "kwargs": {}}',
                    durable.now() + interval '30 days'
                FROM generate_series(1, $2)
                """,
                parked_for_a_month.name,
                PARKED,
            )
            for _ in range(20):  # claim cycles: woken, plus the 50 ms fallback poll
                worker.wake()
                await anyio.sleep(0.05)

            assert await (await engine.start(fresh)).result(timeout=5) == "fresh"
            gc.collect()
            growth = resident_kib() - before

            stats = await conn.fetchrow(
                """
                SELECT count(*) AS runs,
                    count(*) FILTER (WHERE attempt > 0) AS claimed,
                    count(*) FILTER (WHERE status <> 'sleeping') AS moved,
                    count(*) FILTER (WHERE lease_owner IS NOT NULL) AS leased
                FROM durable.runs WHERE workflow_name = $1
                """,
                parked_for_a_month.name,
            )
            assert dict(stats) == {"runs": PARKED, "claimed": 0, "moved": 0, "leased": 0}
            await support.wait_until(lambda: not worker.active, timeout=1, what="an idle worker")
            assert growth < MAX_GROWTH_KIB, f"the worker grew by {growth} KiB"
    finally:
        await conn.close()
