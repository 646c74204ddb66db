"""The parked-runs rep for durable: memory with many sleeping runs, and the claim query."""

from __future__ import annotations

import gc
import json
from typing import Any

import anyio
import asyncpg

from bench import work_durable as W
from bench.databases import rss_bytes
from bench.harness import Bench, RepOut
from durable import Engine
from durable.sql import query

__all__ = ["POLLUTION", "parked_durable", "settled_rss"]

POLLUTION = 8_500
"""Due runs of a workflow the worker does not serve, for the polluted claim."""

INSERT_RUNS = """
INSERT INTO durable.runs (id, workflow_name, workflow_version, status, input, output, queue,
    wake_at, attempt, started_at, finished_at)
SELECT gen_random_uuid(), $2, 1, $3, '{"args": [], "kwargs": {}}', $4::json, 'default',
    CASE WHEN $3 = 'sleeping' THEN durable.now() + interval '1 day'
        WHEN $3 = 'pending' THEN durable.now() END, 1, durable.now(),
    CASE WHEN $3 = 'completed' THEN durable.now() END
FROM generate_series(1, $1)
"""


async def settled_rss() -> int:
    """VmRSS after two GC passes and a moment's quiet."""
    gc.collect()
    await anyio.sleep(0.5)
    gc.collect()
    return rss_bytes()


def _scans(plan: dict[str, Any]) -> list[str]:
    """Every scan of durable.runs in a JSON plan, e.g. 'Index Scan runs_claim_idx'."""
    found = []
    if plan.get("Relation Name") == "runs" and "Scan" in plan["Node Type"]:
        found.append(f"{plan['Node Type']} {plan.get('Index Name', '')}".strip())
    for child in plan.get("Plans", []):
        found.extend(_scans(child))
    return found


async def _explain_claim(
    conn: asyncpg.Connection, engine: Engine, times: int
) -> tuple[list[float], list[str]]:
    """EXPLAIN ANALYZE durable's claim_runs as this engine's worker sends it, rolled back."""
    names = [wf.name for wf in engine.registry]
    versions = [wf.version for wf in engine.registry]
    seconds: list[float] = []
    scans: list[str] = []
    for _ in range(times):
        tx = conn.transaction()
        await tx.start()
        try:
            raw = await conn.fetchval(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + query("claim_runs"),
                engine.runtime.worker_id, 30.0, 16, ["default"], names, versions,
                engine.runtime.settings.max_run_attempts,
            )  # fmt: skip
        finally:
            await tx.rollback()
        plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
        seconds.append(plan["Execution Time"] / 1000)
        scans = _scans(plan["Plan"])
    return seconds, scans


async def parked_durable(bench: Bench, engine: Engine) -> RepOut:
    """Insert the sleeping and finished runs beside a running worker; measure its RSS
    before and after (it is woken and runs one workflow meanwhile), then EXPLAIN the claim."""
    n, finished = bench.n("parked"), bench.n("finished")
    conn = await asyncpg.connect(bench.durable_url)
    try:
        await (await engine.start(W.steps, 1)).result(timeout=60)
        before = await settled_rss()
        await conn.execute(INSERT_RUNS, n, W.sleeper.name, "sleeping", None)
        await conn.execute(INSERT_RUNS, finished, W.steps.name, "completed", "1")
        await conn.execute("ANALYZE durable.runs")
        await conn.execute("SELECT pg_notify('durable_wake', 'default')")
        await (await engine.start(W.steps, 1)).result(timeout=60)
        after = await settled_rss()
        seconds, scans = await _explain_claim(conn, engine, 10)
        # Due runs of a workflow this worker does not serve: the claim must not read them.
        await conn.execute(INSERT_RUNS, POLLUTION, "bench.elsewhere", "pending", None)
        await conn.execute("ANALYZE durable.runs")
        polluted, polluted_scans = await _explain_claim(conn, engine, 10)
    finally:
        await conn.close()
    note = f"{n:,} sleeping + {finished:,} finished; " + ", ".join(scans)
    polluted_note = f"+{POLLUTION:,} due of an unserved workflow; " + ", ".join(polluted_scans)
    return RepOut(
        {"memory": [(after - before) / n], "claim_query": seconds, "claim_polluted": polluted},
        notes={
            "claim_query": note,
            "claim_polluted": polluted_note,
            "memory": f"{(after - before) / 2**20:+.1f} MiB in all",
        },
    )
