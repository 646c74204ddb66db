"""Latency scenarios: the commit floor, step latency, pick-up latency and replay.

Each function says what it measures and how; the code of each system's side is in
``runs_durable`` / ``runs_dbos`` (``runs_plain`` for the floor), under the same name.
"""

from __future__ import annotations

from bench.agents import Harness
from bench.harness import Measure
from bench.report import Figure

__all__ = ["dashboard", "events", "floor", "pickup", "replay", "replayer", "step_latency"]


async def floor(h: Harness) -> list[Figure]:
    """**floor**: 1,000 sequential single-row INSERT commits with asyncpg (autocommit, one
    prepared statement, one connection) on the durable database, per rep; each commit is a
    sample. Its median is the "one raw commit" the 'commits' column divides by."""
    figures = await h.alternate("floor", [Measure("commit", "one commit")], {"asyncpg": "floor"})
    if figures[0].ok:
        h.commit = figures[0].stat("median")
    return figures


async def step_latency(h: Harness) -> list[Figure]:
    """**step latency**: 200 sequential runs per rep of a 10-step no-op workflow on an
    in-process worker. *10-step workflow*: ``start`` called -> result returned (durable:
    ``engine.start`` + ``handle.result()``; DBOS: ``start_workflow_async`` +
    ``get_result()``). *one step*: from one step body starting to the next one starting
    (record the step, take the next cursor key, call the body): 9 samples per workflow.
    *dbos sync*: the same with DBOS's synchronous API (``start_workflow`` in a thread),
    which is DBOS's faster path; 'vs DBOS' compares with the async one, like for like."""
    measures = [Measure("workflow", "10-step workflow"), Measure("step", "one step")]
    systems = {"durable": "step", "dbos": "step", "dbos sync": "step_sync"}
    return await h.alternate("step latency", measures, systems)


async def events(h: Harness) -> list[Figure]:
    """**events**: the ``step`` scenario (durable only) with the lifecycle event triggers on
    (as shipped), off (disabled for the rep: the hot path without the event stream), and
    on with an ``engine.events`` consumer tailing ``run.completed`` in the same process
    (*start -> event*: from ``engine.start`` to the consumer yielding the run's
    ``run.completed``). See ``bench/events_overhead.py``."""
    measures = [
        Measure("workflow", "10-step workflow"),
        Measure("step", "one step"),
        Measure("seen", "start -> run.completed event"),
    ]
    systems = {
        "durable": "events_on",
        "durable events off": "events_off",
        "durable tailed": "events_tailed",
    }
    return await h.alternate("events", measures, systems)


async def pickup(h: Harness) -> list[Figure]:
    """**pick-up latency**: lone starts on an idle worker (the previous run finished, then
    50 ms of quiet), from the start call to the first step body running; 30 samples in all,
    split over the reps. Timed from the call, not its return: durable's worker lives in
    the same event loop and can claim the run before ``start`` has returned. durable:
    ``engine.start`` on the worker's own engine (INSERT + NOTIFY; the worker wakes on
    LISTEN). DBOS: ``enqueue_workflow_async`` on a queue with DBOS's default settings (its
    queue thread polls every second)."""
    notes = {"dbos": "queue polled every 1 s (DBOS default)"}
    measure = Measure("pickup", "start -> first step", notes=notes)
    return await h.alternate("pick-up", [measure], {"durable": "pickup", "dbos": "pickup"})


async def replay(h: Harness) -> list[Figure]:
    """**replay**: a child process runs a workflow of 1,000 no-op steps and is killed with
    SIGKILL right after the 1,000th step is recorded (inside the next step, which blocks).
    The agent then resumes the run, and the workflow body stamps the moment its 1,000th
    recorded call has returned (replayed from the records).

    *claim -> call N*: durable, from the start of the claim query that hands the run to the
    worker (it loads every record of the run in the same statement; timed by wrapping
    ``engine.runtime.store.claim``). DBOS, from the workflow body's entry (DBOS reads each
    record at its call, so all its replay cost follows the entry; its dequeue is left out).

    *body -> call N*: from the workflow body's entry, for both: the in-process replay.

    *made due -> call N*: from the moment the run is made runnable, pick-up included.
    durable: the killed worker's lease is expired by hand (``UPDATE ... SET wake_at =
    durable.now()`` and ``NOTIFY durable_wake`` in one transaction) instead of waiting out
    the 30 s lease. DBOS: ``resume_workflow_async`` (re-enqueued, then dequeued at the next
    1 s poll of DBOS's internal queue).
    """
    n = f"{h.bench.n('replay'):,}"
    measures = [
        Measure("claim", f"claim -> call {n}", notes={"dbos": "from body entry"}),
        Measure("body", f"body -> call {n}"),
        Measure(
            "due",
            f"made due -> call {n}",
            notes={"durable": "lease expired by UPDATE+NOTIFY", "dbos": "resume, 1 s poll"},
        ),
    ]
    return await h.alternate("replay", measures, {"durable": "replay", "dbos": "replay"})


async def replayer(h: Harness) -> list[Figure]:
    """**replay test** (durable only: DBOS has no offline replayer): a workflow of 1,000
    no-op steps runs to completion; *export*: ``engine.export_run`` reads its history (5
    samples per rep); *replay*: ``durable.testing.Replayer.replay`` runs the workflow body
    against that history in memory, with no database (20 samples per rep, after one
    warm-up), checking that every recorded call was replayed."""
    n = f"{h.bench.n('replay'):,}"
    measures = [
        Measure("replay", f"replay {n}-step history (no DB)"),
        Measure("export", f"export {n}-step history"),
    ]
    return await h.alternate("replay test", measures, {"durable": "replayer"})


async def dashboard(h: Harness) -> list[Figure]:
    """**dashboard** (durable only): server time of the web dashboard's pages, requested
    in process through the ASGI app, beside 100,000 finished runs (10,000 with --quick):
    the first runs page, a runs page a fifth of the history deep (keyset cursor), and the page of a
    1,000-step run (timeline, waterfall, JSON). 20 samples per rep after a warm-up."""
    n = f"{h.bench.n('replay'):,}"
    measures = [
        Measure("runs", "runs page (first 50)"),
        Measure("deep", "runs page 1/5 deep"),
        Measure("run", f"run page ({n} steps)"),
    ]
    return await h.alternate("dashboard", measures, {"durable": "dashboard"})
