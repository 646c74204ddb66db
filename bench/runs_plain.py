"""Reps that need neither durable nor DBOS, run in the parent: the commit floor and the
pgqueuer executor reference."""

from __future__ import annotations

import asyncpg

from bench.harness import Bench, RepOut, Runner
from bench.marks import now

__all__ = ["RUNNERS"]


async def floor(bench: Bench, rep: int) -> RepOut:
    """Sequential single-row INSERTs, autocommit, one prepared statement, one connection."""
    conn = await asyncpg.connect(bench.durable_url)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial, v int)")
        insert = await conn.prepare("INSERT INTO bench_floor (v) VALUES ($1)")
        for i in range(20):  # warm-up
            await insert.fetch(i)
        out = []
        for i in range(bench.n("floor")):
            t0 = now()
            await insert.fetch(i)
            out.append(now() - t0)
        return RepOut({"commit": out})
    finally:
        await conn.close()


async def pgqueuer(bench: Bench, rep: int) -> RepOut:
    """Enqueue n plain jobs in one batch, then time ``QueueManager.run(mode=drain)``."""
    from pgqueuer import AsyncpgDriver, Queries, QueueManager
    from pgqueuer.domain.types import QueueExecutionMode
    from pgqueuer.models import Job

    n = bench.n("pgqueuer")
    enqueue_conn = await asyncpg.connect(bench.pgq_url)
    worker_conn = await asyncpg.connect(bench.pgq_url)
    try:
        queries = Queries(AsyncpgDriver(enqueue_conn))
        if not await queries.schema_is_installed():
            await queries.install()
        await queries.enqueue(["bench"] * n, [None] * n, [0] * n)
        manager = QueueManager(Queries(AsyncpgDriver(worker_conn)))
        done = 0

        @manager.entrypoint("bench")
        async def job(job: Job) -> None:
            nonlocal done
            done += 1

        t0 = now()
        await manager.run(mode=QueueExecutionMode.drain)
        elapsed = now() - t0
        if done != n:
            raise RuntimeError(f"pgqueuer ran {done} of {n} jobs")
        return RepOut({"batch": [elapsed]})
    finally:
        await enqueue_conn.close()
        await worker_conn.close()


RUNNERS: dict[str, Runner] = {"floor": floor, "pgqueuer": pgqueuer}
