"""durable's side of every scenario, run in the durable agent process (see ``scenarios_*``
for what each measures). Engines use durable's default settings; each rep opens its own."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import anyio
import asyncpg

from bench import work_durable as W
from bench.costs import Costs
from bench.dashboard_pages import dashboard_durable
from bench.events_overhead import events_off, events_on, events_tailed
from bench.harness import Bench, RepOut, Runner, wait_until
from bench.inflight import inflight_durable
from bench.marks import MARKS, now
from bench.parked import parked_durable
from bench.polling import hold_batch, poll_count
from bench.replay_child import killed_child
from durable import Engine, Workflow
from durable.testing import Replayer

__all__ = ["RUNNERS", "durable_engine", "fresh"]

TIMEOUT = 180.0
DONE = (
    "SELECT count(*) FROM durable.runs AS r JOIN pg_temp.batch AS b ON r.id = b.id"
    " WHERE r.status = 'completed'"
)


@asynccontextmanager
async def durable_engine(
    bench: Bench,
    workflows: Iterable[Workflow[Any, Any]],
    *,
    worker: bool = True,
    concurrency: int | None = None,
) -> AsyncIterator[Engine]:
    """An engine on the durable database with its default settings (``concurrency`` given
    only by the uncapped variants of throughput and drain)."""
    options: dict[str, Any] = {} if concurrency is None else {"concurrency": concurrency}
    async with Engine(
        bench.durable_url, workflows=list(workflows), worker=worker, **options
    ) as engine:
        yield engine


async def fresh(bench: Bench, rep: int) -> None:
    """Before a scenario's first rep: empty durable's run tables."""
    if rep:
        return
    conn = await asyncpg.connect(bench.durable_url)
    try:
        if await conn.fetchval("SELECT to_regclass('durable.runs') IS NOT NULL"):
            await conn.execute("TRUNCATE durable.runs, durable.steps, durable.workers CASCADE")
    finally:
        await conn.close()


async def step(bench: Bench, rep: int) -> RepOut:
    await fresh(bench, rep)
    per_wf: list[float] = []
    per_step: list[float] = []
    costs = Costs(bench.durable_url)
    await costs.begin()
    async with durable_engine(bench, [W.steps]) as engine:
        for _ in range(5):  # warm-up
            await (await engine.start(W.steps, 10)).result(timeout=TIMEOUT)
        costs.cpu_begin()
        for _ in range(bench.n("step")):
            MARKS.reset()
            t0 = now()
            await (await engine.start(W.steps, 10)).result(timeout=TIMEOUT)
            per_wf.append(now() - t0)
            per_step.extend(b - a for a, b in itertools.pairwise(MARKS.step_times))
        costs.cpu_end()
    await costs.end()
    # Commits over the engine's life (5 warm-up runs too), CPU over the timed runs.
    note = costs.note(bench.n("step"), commit_items=bench.n("step") + 5)
    return RepOut({"workflow": per_wf, "step": per_step}, {"workflow": note})


async def throughput(bench: Bench, rep: int) -> RepOut:
    """Default concurrency (16 runs at once), then uncapped (``concurrency`` = the batch:
    every run executes at once, as DBOS runs a started workflow at once), in one rep."""
    await fresh(bench, rep)
    capped, capped_note = await _throughput_once(bench, None)
    uncapped, uncapped_note = await _throughput_once(bench, bench.n("batch"))
    return RepOut(
        {"batch": [capped], "batch_uncapped": [uncapped]},
        {"batch": capped_note, "batch_uncapped": uncapped_note},
    )


async def _throughput_once(bench: Bench, concurrency: int | None) -> tuple[float, str]:
    n, warm = bench.n("batch"), 20
    costs = Costs(bench.durable_url)
    await costs.begin()
    async with durable_engine(bench, [W.one_step], concurrency=concurrency) as engine:

        async def one() -> int:
            return await (await engine.start(W.one_step)).result(timeout=TIMEOUT)

        await asyncio.gather(*(one() for _ in range(warm)))  # warm-up
        costs.cpu_begin()
        t0 = now()
        await asyncio.gather(*(one() for _ in range(n)))
        elapsed = now() - t0
        costs.cpu_end()
    await costs.end()
    # CPU of the timed batch (starts and results too: same process); commits over the
    # engine's life, starts included, per run including the warm-up's.
    return elapsed, costs.note(n, commit_items=n + warm)


async def _poll_done(conn: asyncpg.Connection, ids: Sequence[UUID], target: int) -> int:
    """Poll until ``target`` of ``ids`` completed; return the number of polls (the ids
    are sent once: see ``bench.polling``). A poll, not ``result()``: a waiter would make
    the engine hear every run's notification, which a worker alone does not."""
    held = await hold_batch(conn, ids, "uuid")
    return held + await poll_count(conn, DONE, target, TIMEOUT)


async def drain(bench: Bench, rep: int) -> RepOut:
    """Default concurrency, then uncapped (as DBOS's queue with no worker concurrency)."""
    await fresh(bench, rep)
    capped, capped_note = await _drain_once(bench, None)
    uncapped, uncapped_note = await _drain_once(bench, bench.n("batch"))
    return RepOut(
        {"batch": [capped], "batch_uncapped": [uncapped]},
        {"batch": capped_note, "batch_uncapped": uncapped_note},
    )


async def _drain_once(bench: Bench, concurrency: int | None) -> tuple[float, str]:
    """Like DBOS's held queue: the worker is up and idle (one run through it first) while
    the runs wait in an open transaction; its commit releases them all, and starts the
    clock. CPU is the worker's from the release; commits span the engine's whole life (its
    start-up, the warm-up run), less the polls and the staging transaction."""
    n = bench.n("batch")
    costs = Costs(bench.durable_url)
    await costs.begin()
    conn = await asyncpg.connect(bench.durable_url)
    stage = await asyncpg.connect(bench.durable_url)
    try:
        async with durable_engine(bench, [W.one_step], concurrency=concurrency) as engine:
            warm = await engine.start(W.one_step)  # not result(): see _poll_done
            polls = await _poll_done(conn, [warm.run_id], 1)
            async with stage.transaction():
                handles = [await engine.start(W.one_step, connection=stage) for _ in range(n)]
                costs.cpu_begin()
                t0 = now()
            polls += await _poll_done(conn, [h.run_id for h in handles], n)
            elapsed = now() - t0
            costs.cpu_end()
    finally:
        await conn.close()
        await stage.close()
    await costs.end(excluded=polls + 1)
    return elapsed, costs.note(n)


async def pickup(bench: Bench, rep: int) -> RepOut:
    await fresh(bench, rep)
    out = []
    async with durable_engine(bench, [W.steps]) as engine:
        await (await engine.start(W.steps, 1)).result(timeout=TIMEOUT)  # warm-up
        for _ in range(max(1, bench.n("pickup") // bench.reps)):
            await anyio.sleep(0.05)  # idle: the previous run is finished
            MARKS.reset()
            t0 = now()
            await (await engine.start(W.steps, 1)).result(timeout=TIMEOUT)
            out.append(MARKS.step_times[0] - t0)
    return RepOut({"pickup": out})


async def replay(bench: Bench, rep: int) -> RepOut:
    await fresh(bench, rep)
    run_id = UUID(await killed_child("durable", bench.durable_url, bench.n("replay")))
    claims: list[float] = []
    async with durable_engine(bench, [W.replay, W.steps]) as engine:
        # The resuming worker is an already-running one: warm its pool and statements.
        async def warm() -> int:
            return await (await engine.start(W.steps, 2)).result(timeout=TIMEOUT)

        await asyncio.gather(*(warm() for _ in range(8)))
        store = engine.runtime.store
        claim = store.claim

        async def timed_claim(*args: Any, **kwargs: Any) -> Any:
            t0 = now()
            rows = await claim(*args, **kwargs)
            if rows:
                claims.append(t0)
            return rows

        store.claim = timed_claim  # type: ignore[method-assign]
        conn = await asyncpg.connect(bench.durable_url)
        try:
            MARKS.reset()
            t_due = now()
            async with conn.transaction():
                queue = await conn.fetchval(
                    "UPDATE durable.runs SET wake_at = durable.now()"
                    " WHERE id = $1 AND status = 'running' RETURNING queue",
                    run_id,
                )
                if queue is None:
                    raise RuntimeError(f"run {run_id} was not left running by its worker")
                await conn.execute("SELECT pg_notify('durable_wake', $1)", queue)
            await wait_until(lambda: MARKS.replayed is not None, timeout=TIMEOUT)
            await engine.handle(run_id).result(timeout=TIMEOUT)
        finally:
            await conn.close()
    if MARKS.replayed is None or MARKS.body_entry is None or not claims:
        raise RuntimeError("the resumed run left no stamp")
    return RepOut(
        {
            "claim": [MARKS.replayed - claims[0]],
            "due": [MARKS.replayed - t_due],
            "body": [MARKS.replayed - MARKS.body_entry],
        }
    )


async def replayer(bench: Bench, rep: int) -> RepOut:
    await fresh(bench, rep)
    n = bench.n("replay")
    async with durable_engine(bench, [W.steps]) as engine:
        handle = await engine.start(W.steps, n)
        await handle.result(timeout=TIMEOUT)
        exports = []
        for _ in range(5):
            t0 = now()
            history = await engine.export_run(handle.run_id)
            exports.append(now() - t0)
    replayer = Replayer(workflows=[W.steps])
    await replayer.replay(history)  # warm-up: type adapters, imports
    samples = []
    for _ in range(20):
        t0 = now()
        report = await replayer.replay(history)
        samples.append(now() - t0)
        if not report.ok or report.replayed != n:
            raise RuntimeError(f"the replay did not replay {n} calls: {report.describe()}")
    return RepOut({"replay": samples, "export": exports})


async def parked(bench: Bench, rep: int) -> RepOut:
    await fresh(bench, rep)
    async with durable_engine(bench, [W.sleeper, W.steps]) as engine:
        return await parked_durable(bench, engine)


async def inflight(bench: Bench, rep: int) -> RepOut:
    await fresh(bench, rep)
    return await inflight_durable(bench, rep)


async def dashboard(bench: Bench, rep: int) -> RepOut:
    await fresh(bench, 0)  # every rep fills its own history
    async with durable_engine(bench, [W.steps]) as engine:
        return await dashboard_durable(bench, engine)


RUNNERS: dict[str, Runner] = {
    "inflight": inflight,
    "step": step,
    "events_on": events_on,
    "events_off": events_off,
    "events_tailed": events_tailed,
    "throughput": throughput,
    "drain": drain,
    "pickup": pickup,
    "replay": replay,
    "parked": parked,
    "replayer": replayer,
    "dashboard": dashboard,
}
