"""Load scenarios: throughput, queue drain, the pgqueuer reference and parked runs.

Each function says what it measures and how; the code of each system's side is in
``runs_durable`` / ``runs_dbos`` (``runs_plain`` for pgqueuer), under the same name.
"""

from __future__ import annotations

from bench.agents import Harness
from bench.harness import Measure
from bench.report import Figure

__all__ = ["drain", "inflight", "parked", "pgqueuer", "throughput"]


async def throughput(h: Harness) -> list[Figure]:
    """**throughput**: 1,000 tasks at once, each starting a 1-step no-op workflow and
    waiting for its result, on an in-process worker; a sample is the time until the last
    result is back. durable: ``engine.start`` + ``handle.result()``, once with the default
    ``concurrency=16`` and once uncapped (``concurrency=1000``); DBOS:
    ``start_workflow_async`` + ``get_result()``, which runs every started workflow at once
    (its one figure stands beside both rows)."""
    n = h.bench.n("batch")
    measures = [
        Measure("batch", f"{n:,} concurrent 1-step", per=n),
        Measure("batch_uncapped", f"{n:,} concurrent, uncapped", per=n),
    ]
    systems = {"durable": "throughput", "dbos": "throughput"}
    return await h.alternate("throughput", measures, systems)


async def drain(h: Harness) -> list[Figure]:
    """**queue drain**: 1,000 1-step workflows stored first with nothing running them,
    then a worker is let loose; a sample is the time until all are finished, read by
    polling their status every 5 ms on a separate connection. Both workers are up and
    idle when the runs are released. durable: the worker engine finishes one warm-up run,
    the 1,000 are started in one open transaction, and the clock starts at its commit.
    DBOS: enqueued with ``enqueue_workflow_async`` on a queue registered for the rep with
    ``worker_concurrency=0``, which must still hold them all after its queue thread has
    polled it; the clock starts when the limit is lifted
    (``set_worker_concurrency_async(None)``). DBOS's queue thread reads the queue's
    settings before each wait of its polling interval (1 s by default) and dequeues after
    it, so it starts the batch 1 to 2 s after the release. durable drains twice per rep,
    with the default ``concurrency=16`` and uncapped (``concurrency=1000``); DBOS's queue
    has no worker concurrency limit, so its one figure stands beside both rows."""
    n = h.bench.n("batch")
    notes = {"dbos": "includes 1-2 s queue poll"}
    measures = [
        Measure("batch", f"{n:,} queued 1-step", per=n, notes=notes),
        Measure("batch_uncapped", f"{n:,} queued, uncapped", per=n, notes=notes),
    ]
    return await h.alternate("queue drain", measures, {"durable": "drain", "dbos": "drain"})


async def inflight(h: Harness) -> list[Figure]:
    """**in-flight runs**: worker memory per run executing at once (durable only; see
    ``bench.inflight``): 1,000 one-step runs on a worker with ``concurrency=1000``, each
    waiting in-process inside its step; VmRSS with all of them in flight minus before."""
    n = h.bench.n("batch")
    measure = Measure("memory", f"RSS per in-flight run ({n:,})", kind="bytes")
    return await h.alternate("in-flight", [measure], {"durable": "inflight"}, reps=1)


async def pgqueuer(h: Harness) -> list[Figure]:
    """**executor reference**: pgqueuer (default settings, batch size 10) drains 5,000
    plain jobs that record nothing, on its own database: enqueued in one batch, then the
    clock runs from ``QueueManager.run(mode=drain)`` until it returns."""
    n = h.bench.n("pgqueuer")
    notes = {"pgqueuer": "jobs record nothing"}
    measure = Measure("batch", f"{n:,} plain jobs", per=n, notes=notes)
    return await h.alternate("executor ref", [measure], {"pgqueuer": "pgqueuer"})


async def parked(h: Harness) -> list[Figure]:
    """**parked runs**: 10,000 sleeping runs (due in a day), one rep. *RSS per parked run*:
    the agent process's VmRSS after minus before, over the number of parked runs, with the
    worker running throughout. durable: the rows are inserted with SQL (status
    ``sleeping``, as ``durable.sleep`` leaves them) beside 100,000 finished runs, then the
    worker is woken and runs one workflow, so it has polled with them present. DBOS:
    workflows started with ``start_workflow_async`` that call ``DBOS.sleep_async`` for a
    day (a sleeping DBOS workflow stays a coroutine in its process). *claim query*:
    durable's ``claim_runs`` under ``EXPLAIN ANALYZE`` (rolled back, 10 times) after
    ``ANALYZE durable.runs``; the note names its scans of ``durable.runs``. *claim, 8,500
    due elsewhere*: the same after 8,500 due runs of a workflow the worker does not serve
    are added (its cost must not grow with them)."""
    n = h.bench.n("parked")
    measures = [
        Measure("memory", f"RSS per parked run ({n:,})", kind="bytes"),
        Measure("claim_query", "claim query"),
        Measure("claim_polluted", "claim, 8,500 due elsewhere"),
    ]
    figures = await h.alternate(
        "parked runs", measures, {"durable": "parked", "dbos": "parked"}, reps=1
    )
    for fig in figures:
        if fig.measure.startswith("claim") and fig.system == "dbos" and fig.error is None:
            fig.error = "no claim query: a sleeping DBOS workflow waits in its process"
    return figures
