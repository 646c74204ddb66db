"""The dashboard rep for durable: server time of the runs page and of a run's page.

The durable database holds ``finished`` completed runs (spread over the last day) and one
run of 1,000 recorded steps; the pages are requested in process through the ASGI app
(httpx's ASGITransport), so a sample is the server's time: the queries and the template.
"""

from __future__ import annotations

import asyncpg
import httpx

from bench import work_durable as W
from bench.harness import Bench, RepOut
from bench.marks import now
from durable import Engine

__all__ = ["dashboard_durable"]

SAMPLES = 20
FILL = """
INSERT INTO durable.runs (id, workflow_name, workflow_version, status, input, output, queue,
    attempt, created_at, started_at, finished_at)
SELECT gen_random_uuid(), $2, 1, 'completed', '{"args": [], "kwargs": {}}', '1', 'default', 1,
    durable.now() - g * interval '1 second', durable.now() - g * interval '1 second',
    durable.now() - g * interval '1 second' + interval '20 ms'
FROM generate_series(1, $1) AS g
"""


async def _timed(http: httpx.AsyncClient, path: str) -> list[float]:
    (await http.get(path)).raise_for_status()  # warm-up: templates, prepared statements
    samples = []
    for _ in range(SAMPLES):
        t0 = now()
        response = await http.get(path)
        samples.append(now() - t0)
        response.raise_for_status()
    return samples


async def dashboard_durable(bench: Bench, engine: Engine) -> RepOut:
    """Fill the history, then time GET /runs, a deep /runs page, and GET /runs/{id}."""
    from durable.dashboard import dashboard_app

    n, finished = bench.n("replay"), bench.n("finished")
    conn = await asyncpg.connect(bench.durable_url)
    try:
        await conn.execute(FILL, finished, W.steps.name)
        await conn.execute("ANALYZE durable.runs")
    finally:
        await conn.close()
    handle = await engine.start(W.steps, n)
    await handle.result(timeout=180)
    app = dashboard_app(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        first = await _timed(http, "/runs")
        page = await engine.list_runs(limit=1000)
        for _ in range(finished // 5000 - 1):  # a fifth of the history down
            assert page.next_cursor is not None
            page = await engine.list_runs(limit=1000, cursor=page.next_cursor)
        deep = await _timed(http, f"/runs?cursor={page.next_cursor}")
        run = await _timed(http, f"/runs/{handle.run_id}")
    note = f"{finished:,} finished runs; run page of {n:,} steps"
    return RepOut({"runs": first, "deep": deep, "run": run}, {"runs": note})
