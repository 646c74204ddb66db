"""History at scale: pruning finished runs row by row vs dropping partitions, and the
commits one run costs (the figures ``docs/scaling.md`` builds on).

Both scenarios run in the parent process on their own databases of the bench server
(created fresh, dropped after). WAL is read as ``pg_current_wal_lsn()`` differences: the
volume of the whole server, so run them on a quiet one (the embedded server is).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import asyncpg

from bench.agents import Harness
from bench.databases import with_database
from bench.harness import log
from bench.report import Figure
from durable import Engine, step, workflow
from durable._store.migrations import migrate
from durable._store.partition_statements import partition_history

__all__ = ["commits", "prune"]

STEPS_PER_RUN = 5
PERIOD = 3600.0  # one partition per hour of run starts
HOURS = 24  # the generated runs started over one day, two days ago

# N finished runs that started 2 days + up to HOURS hours ago (UUIDv7 ids of that
# moment, random low bits) and finished 2 days ago: all past a 1-day retention.
_RUNS = """
INSERT INTO durable.runs (id, workflow_name, status, input, output, queue, attempt,
    created_at, started_at, finished_at, updated_at)
SELECT overlay(durable.uuid7_floor(t.at)::text
        placing substr(md5(g::text), 1, 12) from 25 for 12)::uuid,
    'bench.prune', 'completed', '{"args": [], "kwargs": {}}', '42', 'default', 1,
    t.at, t.at, now() - interval '2 days', now() - interval '2 days'
FROM generate_series(1, $1::int) AS g,
    LATERAL (SELECT now() - interval '2 days'
        - g * ($2::float8 * 3600 / $1::int) * interval '1 second' AS at) AS t
"""
_STEPS = """
INSERT INTO durable.steps (run_id, cursor_key, seq, kind, name, status, output, started_at,
    finished_at)
SELECT r.id, 'step:bench.s#' || k, k, 'step', 'bench.s', 'completed',
    '{"ok": true, "n": 12345}', r.started_at, r.started_at
FROM durable.runs AS r, generate_series(0, $1::int - 1) AS k
"""


@asynccontextmanager
async def _database(h: Harness, name: str) -> AsyncIterator[str]:
    """A fresh, migrated database ``name`` on the bench server, dropped afterwards."""
    admin = h.bench.durable_url
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(admin, name)
    db = await asyncpg.connect(url)
    try:
        await migrate(db)
    finally:
        await db.close()
    try:
        yield url
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def _fill(url: str, runs: int, partitioned: bool) -> None:
    db = await asyncpg.connect(url)
    try:
        if partitioned:
            await partition_history(db, PERIOD, 2)
            await db.execute(
                "SELECT durable.ensure_history_partitions("
                "now() - interval '2 days' - make_interval(hours => $1 + 1), now())",
                HOURS,
            )
        await db.execute(_RUNS, runs, float(HOURS))
        await db.execute(_STEPS, STEPS_PER_RUN)
        await db.execute("VACUUM ANALYZE durable.runs")
        await db.execute("VACUUM ANALYZE durable.steps")
        await db.execute("CHECKPOINT")  # both layouts start from the same WAL state
    finally:
        await db.close()


async def _wal(url: str) -> int:
    db = await asyncpg.connect(url)
    try:
        return int(await db.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))
    finally:
        await db.close()


async def _measured(url: str, work: Any) -> tuple[float, int, Any]:
    """Seconds and WAL bytes of ``await work()``, and its result."""
    wal = await _wal(url)
    began = time.perf_counter()
    result = await work()
    seconds = time.perf_counter() - began
    return seconds, await _wal(url) - wal, result


async def _vacuum(url: str) -> None:
    db = await asyncpg.connect(url)
    try:
        await db.execute("VACUUM durable.runs, durable.steps, durable.signals, durable.events")
    finally:
        await db.close()


async def _prune_once(h: Harness, runs: int, partitioned: bool) -> dict[str, float]:
    name = "bench_prune_partitions" if partitioned else "bench_prune_rows"
    async with _database(h, name) as url:
        log(f"prune: filling {runs:,} runs x {STEPS_PER_RUN} steps ({name})")
        await _fill(url, runs, partitioned)
        async with Engine(url, worker=False) as engine:
            log(f"prune: pruning ({name})")
            seconds, wal, deleted = await _measured(url, lambda: engine.prune("1d"))
        assert deleted == runs, f"pruned {deleted} of {runs} runs"
        v_seconds, v_wal, _ = await _measured(url, lambda: _vacuum(url))
    return {"seconds": seconds, "wal": wal, "vacuum_seconds": v_seconds, "vacuum_wal": v_wal}


async def prune(h: Harness) -> list[Figure]:
    """**prune history**: N finished runs of 5 steps each (``--prune-runs``; 1,000,000, or
    20,000 with ``--quick``), generated with SQL over one day of UUIDv7 ids, all finished
    two days ago; then ``engine.prune("1d")`` deletes all of them. *rows*: today's layout,
    the batched row-by-row DELETE of runs and steps. *partitions*: the partitioned layout
    (``durable migrate --partitioned``, 1 h partitions), where prune drops the 24 steps
    partitions whole and deletes the runs rows. Time and WAL (server-wide LSN difference)
    of the prune, then of the VACUUM that reclaims what it left, one rep each."""
    runs = h.bench.n("prune")
    figures: list[Figure] = []
    for system, partitioned in (("rows", False), ("partitions", True)):
        out = await _prune_once(h, runs, partitioned)
        note = f"{runs:,} runs x {STEPS_PER_RUN} steps"
        figures += [
            Figure("prune history", "prune: time", system, [out["seconds"]], per=runs, note=note),
            Figure("prune history", "prune: WAL", system, [out["wal"]], "bytes", note=note),
            Figure("prune history", "VACUUM after: time", system, [out["vacuum_seconds"]]),
            Figure("prune history", "VACUUM after: WAL", system, [out["vacuum_wal"]], "bytes"),
        ]
    return figures


# -- commits per run --------------------------------------------------------------------

COMMIT_STEPS = 3


@step(name="bench.commits.noop")
async def _noop(i: int) -> int:
    return i


@workflow(name="bench.commits.three")
async def _three() -> int:
    return sum([await _noop(i) for i in range(COMMIT_STEPS)])


_COUNTERS = """
SELECT xact_commit, pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next_xid
FROM pg_stat_database WHERE datname = current_database()
"""


async def _counters(url: str) -> tuple[int, int]:
    db = await asyncpg.connect(url)
    try:
        await db.execute("SELECT pg_stat_clear_snapshot()")
        row = await db.fetchrow(_COUNTERS)
        assert row is not None
        return int(row["xact_commit"]), int(row["next_xid"])
    finally:
        await db.close()


async def _drain(url: str, runs: int) -> float:
    """Start ``runs`` runs from a client, then drain them with a worker; the seconds."""
    async with Engine(url, worker=False, workflows=[_three]) as client:
        ids = [(await client.start(_three)).run_id for _ in range(runs)]
    began = time.perf_counter()
    async with Engine(url, workflows=[_three], concurrency=32, poll_interval=0.05) as engine:
        for run_id in ids:
            await engine.handle(run_id).result(timeout=600)
    return time.perf_counter() - began


async def _commit_floor(url: str, connections: int, seconds: float) -> float:
    """Single-row INSERT commits per second over ``connections`` connections."""
    setup = await asyncpg.connect(url)
    await setup.execute("CREATE TABLE IF NOT EXISTS bench_floor (n bigint)")
    await setup.close()
    done = 0

    async def one() -> None:
        nonlocal done
        db = await asyncpg.connect(url)
        try:
            statement = await db.prepare("INSERT INTO bench_floor VALUES (1)")
            stop = time.perf_counter() + seconds
            while time.perf_counter() < stop:
                await statement.fetch()
                done += 1
        finally:
            await db.close()

    began = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(connections):
            tg.start_soon(one)
    return done / (time.perf_counter() - began)


async def commits(h: Harness) -> list[Figure]:
    """**commits per run**: N 3-step runs (1,000, or 300 with ``--quick``) started one by
    one from a client, then drained by one worker (concurrency 32). *transactions per
    run*: ``pg_stat_database.xact_commit`` delta over starts and drain (reads included:
    claims, polls, heartbeats, result reads), read after every connection closed (a
    backend's counters reach the view when it exits). *write transactions per run*: the
    xids assigned over the same window (``pg_current_snapshot()`` xmax delta). *commit
    floor*: single-row INSERT commits per second for 3 s on 1 and on 16 connections."""
    runs = h.bench.n("batch")
    async with _database(h, "bench_commits") as url:
        commits0, xid0 = await _counters(url)
        seconds = await _drain(url, runs)
        await anyio.sleep(2.0)  # backends flush their counters as they exit
        commits1, xid1 = await _counters(url)
        floor_1 = await _commit_floor(url, 1, 3.0)
        floor_16 = await _commit_floor(url, 16, 3.0)
    per_run = (commits1 - commits0) / runs
    writes = (xid1 - xid0) / runs
    note = f"{runs:,} runs of {COMMIT_STEPS} steps"
    ceiling = f"floor / write transactions per run: {floor_16 / writes:,.0f} runs/s"
    return [
        Figure("commits", "drain", "durable", [seconds], per=runs, note=note),
        Figure("commits", "transactions per run", "durable", [per_run], "count", note=note),
        Figure("commits", "write transactions per run", "durable", [writes], "count", note=note),
        Figure("commits", "commit floor, 1 conn (per s)", "asyncpg", [floor_1], "count"),
        Figure(
            "commits",
            "commit floor, 16 conns (per s)",
            "asyncpg",
            [floor_16],
            "count",
            note=ceiling,
        ),
    ]
