"""The scaling scenario: queue drain with 1, 2 and 4 worker processes, and what Postgres
itself allows (commits per second from several connections, beside the one-connection
commit floor). Run in the parent process: it starts ``durable worker --processes N``.

Each drain sample: n one-step runs are stored due in an hour, ``durable worker --processes
N`` is started and waited for until each of its N processes said it serves, then one
statement makes every run due (and one NOTIFY wakes the workers); the clock runs from that
statement until all n are completed (status polled every 5 ms on another connection). So
process start-up is outside the figure, and the figure is the steady drain of N processes.
Every figure carries ``os.cpu_count()``: N processes on fewer cores share them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from uuid import UUID

import anyio
import asyncpg

from bench import work_durable as W
from bench.agents import ROOT, Harness
from bench.harness import Bench, log
from bench.marks import now
from bench.polling import hold_batch, poll_count
from bench.report import Figure
from bench.runs_durable import DONE, durable_engine, fresh

__all__ = ["PROCESSES", "scaling"]

PROCESSES = (1, 2, 4)
COMMIT_CONNECTIONS = 8
START_TIMEOUT = 180.0
DRAIN_TIMEOUT = 300.0
RELEASE = "UPDATE durable.runs SET wake_at = durable.now() WHERE id = ANY($1::uuid[])"


async def scaling(h: Harness) -> list[Figure]:
    """**scaling**: drain throughput of n queued one-step runs with 1, 2 and 4 worker
    processes (``durable worker --processes N``, default settings, start-up excluded), and
    a synthetic "Postgres is the limit" row: trivial single-row INSERT commits from
    8 connections at once (one asyncio process), whose rate is printed beside the
    one-connection floor. The note of every row gives ``os.cpu_count()``."""
    cpus = os.cpu_count()
    n = h.bench.n("batch")
    figures = []
    for processes in PROCESSES:
        figure = Figure(
            "scaling", f"{n:,} queued 1-step, {processes} proc", "durable", per=n,
            note=f"{processes} worker process{'es' if processes > 1 else ''} on {cpus} CPUs",
        )  # fmt: skip
        for rep in range(h.bench.reps):
            log(f"scaling: {processes} worker processes, rep {rep + 1}/{h.bench.reps}")
            try:
                figure.samples.append(await _drain(h.bench, processes, n))
            except Exception as exc:
                figure.error = f"{type(exc).__name__}: {exc}"[:150]
                log(f"scaling: failed: {figure.error}")
                break
        figures.append(figure)
    figures.append(await _commits(h, cpus))
    return figures


async def _drain(bench: Bench, processes: int, n: int) -> float:
    await fresh(bench, 0)
    async with durable_engine(bench, [W.one_step], worker=False) as client:
        handles = await asyncio.gather(*(client.start(W.one_step, delay="1h") for _ in range(n)))
    ids: list[UUID] = [handle.run_id for handle in handles]
    worker = await _start_workers(bench.durable_url, processes)
    conn = await asyncpg.connect(bench.durable_url)
    try:
        await hold_batch(conn, ids, "uuid")  # polls then send no ids (bench.polling)
        t0 = now()
        await conn.execute(RELEASE, ids)
        await conn.execute("SELECT pg_notify('durable_wake', '')")
        await poll_count(conn, DONE, n, DRAIN_TIMEOUT)
        return now() - t0
    finally:
        await conn.close()
        await _stop(worker)


async def _start_workers(url: str, processes: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "durable", "worker", "--app", "bench.work_durable:one_step",
        "--processes", str(processes), "--database-url", url,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        with anyio.fail_after(START_TIMEOUT):
            await _wait_serving(proc, processes)
    except BaseException:
        await _stop(proc)
        raise
    return proc


async def _wait_serving(proc: asyncio.subprocess.Process, processes: int) -> None:
    """Until each of the ``processes`` worker processes printed that it serves."""
    assert proc.stdout is not None
    serving = 0
    while serving < processes:
        line = await proc.stdout.readline()
        if not line:
            raise RuntimeError(f"durable worker exited with {await proc.wait()}")
        serving += b" serving " in line


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        with anyio.move_on_after(60):
            await proc.wait()
            return
        proc.kill()
        await proc.wait()


async def _commits(h: Harness, cpus: int | None) -> Figure:
    per_connection = h.bench.n("floor")
    floor = f"{1 / h.commit:,.0f}/s" if h.commit else "n/a"
    figure = Figure(
        "scaling", f"commits, {COMMIT_CONNECTIONS} connections", "postgres",
        per=per_connection * COMMIT_CONNECTIONS,
        note=f"floor (1 connection) {floor}; {cpus} CPUs",
    )  # fmt: skip
    for _ in range(h.bench.reps):
        figure.samples.append(await _commit_burst(h.bench.durable_url, per_connection))
    return figure


async def _commit_burst(url: str, per_connection: int) -> float:
    """Seconds for ``COMMIT_CONNECTIONS`` connections to make ``per_connection`` single-row
    autocommit INSERTs each, all at once."""
    conns = [await asyncpg.connect(url) for _ in range(COMMIT_CONNECTIONS)]
    try:
        await conns[0].execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial, v int)")
        inserts = [await c.prepare("INSERT INTO bench_floor (v) VALUES ($1)") for c in conns]

        async def loop(insert: asyncpg.prepared_stmt.PreparedStatement) -> None:
            for i in range(per_connection):
                await insert.fetch(i)

        t0 = now()
        await asyncio.gather(*(loop(insert) for insert in inserts))
        return now() - t0
    finally:
        for conn in conns:
            await conn.close()
