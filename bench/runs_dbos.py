"""DBOS's side of every scenario, run in the DBOS agent process, which launches DBOS once
with its default settings (see ``work_dbos.launch``); our own harness, DBOS's public API."""

from __future__ import annotations

import asyncio
import itertools

import anyio
import asyncpg
from dbos import DBOS

from bench import work_dbos as X
from bench.harness import Bench, RepOut, Runner, wait_until
from bench.marks import MARKS, now
from bench.parked import settled_rss
from bench.polling import hold_batch, poll_count
from bench.replay_child import killed_child

__all__ = ["RUNNERS"]

TIMEOUT = 180.0
DONE = (
    "SELECT count(*) FROM dbos.workflow_status AS w JOIN pg_temp.batch AS b"
    " ON w.workflow_uuid = b.id WHERE w.status = 'SUCCESS'"
)
STARTED = (
    "SELECT count(*) FROM dbos.workflow_status"
    " WHERE workflow_uuid = ANY($1::text[]) AND status <> 'ENQUEUED'"
)


async def step(bench: Bench, rep: int) -> RepOut:
    for _ in range(5):  # warm-up
        await (await DBOS.start_workflow_async(X.steps, 10)).get_result()
    per_wf: list[float] = []
    per_step: list[float] = []
    for _ in range(bench.n("step")):
        MARKS.reset()
        t0 = now()
        await (await DBOS.start_workflow_async(X.steps, 10)).get_result()
        per_wf.append(now() - t0)
        per_step.extend(b - a for a, b in itertools.pairwise(MARKS.step_times))
    return RepOut({"workflow": per_wf, "step": per_step})


async def step_sync(bench: Bench, rep: int) -> RepOut:
    """``step`` with DBOS's synchronous API, the whole loop in one worker thread."""

    def loop() -> RepOut:
        for _ in range(5):
            DBOS.start_workflow(X.steps_sync, 10).get_result()
        per_wf: list[float] = []
        per_step: list[float] = []
        for _ in range(bench.n("step")):
            MARKS.reset()
            t0 = now()
            DBOS.start_workflow(X.steps_sync, 10).get_result()
            per_wf.append(now() - t0)
            per_step.extend(b - a for a, b in itertools.pairwise(MARKS.step_times))
        return RepOut({"workflow": per_wf, "step": per_step})

    return await anyio.to_thread.run_sync(loop)


async def throughput(bench: Bench, rep: int) -> RepOut:
    async def one() -> int:
        return await (await DBOS.start_workflow_async(X.one_step)).get_result()

    await asyncio.gather(*(one() for _ in range(20)))  # warm-up
    t0 = now()
    await asyncio.gather(*(one() for _ in range(bench.n("batch"))))
    elapsed = now() - t0
    # DBOS runs every started workflow at once: the same figure stands beside both rows.
    return RepOut({"batch": [elapsed], "batch_uncapped": [elapsed]})


async def drain(bench: Bench, rep: int) -> RepOut:
    """The batch is enqueued on a queue of this rep's own, registered held
    (``worker_concurrency=0``); once DBOS's queue thread has polled it with all of the
    batch enqueued and run none, the limit is lifted (the clock starts) and the queue is
    deleted when all are done.

    One queue is not held again for the next rep: DBOS's queue thread reads a queue's
    settings before each polling interval's wait and dequeues after it with what it read
    (``queue_worker_thread`` in ``dbos/_queue.py``, 3.4.0), so a queue set back to 0 right
    after a drain still dequeues once without a limit, up to a second later."""
    n = bench.n("batch")
    name = f"{X.DRAIN_QUEUE}_{rep}"
    conn = await asyncpg.connect(bench.dbos_url)
    try:
        queue = await DBOS.register_queue_async(name, worker_concurrency=0)
        registered = now()
        handles = await asyncio.gather(
            *(DBOS.enqueue_workflow_async(name, X.one_step) for _ in range(n))
        )
        ids = [h.get_workflow_id() for h in handles]
        # DBOS's queue manager looks for new queues every 1 s and starts a thread for each,
        # which polls once per polling interval (+-5% jitter): hold the batch until it has.
        poll = await queue.get_polling_interval_sec_async()
        await anyio.sleep(max(0.0, max(registered + 1.0, now()) + 1.25 * poll - now()))
        if await conn.fetchval(STARTED, ids):
            raise RuntimeError("the held DBOS queue ran workflows")
        await hold_batch(conn, ids, "text")  # polls then send no ids (bench.polling)
        t0 = now()
        await queue.set_worker_concurrency_async(None)
        await poll_count(conn, DONE, n, TIMEOUT)
        elapsed = now() - t0
    finally:
        await conn.close()
        await DBOS.delete_queue_async(name)
    # The queue has no worker concurrency limit: the same figure stands beside both rows.
    return RepOut({"batch": [elapsed], "batch_uncapped": [elapsed]})


async def pickup(bench: Bench, rep: int) -> RepOut:
    out = []
    for _ in range(max(1, bench.n("pickup") // bench.reps)):
        await anyio.sleep(0.05)
        MARKS.reset()
        t0 = now()
        handle = await DBOS.enqueue_workflow_async(X.PICKUP_QUEUE, X.steps, 1)
        await handle.get_result(polling_interval_sec=0.01)
        out.append(MARKS.step_times[0] - t0)
    return RepOut({"pickup": out})


async def replay(bench: Bench, rep: int) -> RepOut:
    workflow_id = await killed_child("dbos", bench.dbos_url, bench.n("replay"))
    MARKS.reset()
    t_due = now()
    handle = await DBOS.resume_workflow_async(workflow_id)
    await wait_until(lambda: MARKS.replayed is not None, timeout=TIMEOUT)
    await handle.get_result(polling_interval_sec=0.01)
    if MARKS.replayed is None or MARKS.body_entry is None:
        raise RuntimeError("the resumed workflow left no stamp")
    body = MARKS.replayed - MARKS.body_entry
    return RepOut({"claim": [body], "due": [MARKS.replayed - t_due], "body": [body]})


async def parked(bench: Bench, rep: int) -> RepOut:
    n = bench.n("parked")
    before = await settled_rss()
    MARKS.reset()
    for start in range(0, n, 500):
        batch = min(500, n - start)
        await asyncio.gather(*(DBOS.start_workflow_async(X.sleeper) for _ in range(batch)))
    await wait_until(lambda: MARKS.parked >= n, timeout=TIMEOUT)
    after = await settled_rss()
    return RepOut(
        {"memory": [(after - before) / n]},
        notes={"memory": f"{(after - before) / 2**20:+.1f} MiB in all"},
    )


RUNNERS: dict[str, Runner] = {
    "step": step,
    "step_sync": step_sync,
    "throughput": throughput,
    "drain": drain,
    "pickup": pickup,
    "replay": replay,
    "parked": parked,
}
