"""The DBOS side: the same workloads as ``work_durable``, written with DBOS's public API,
and the lifecycle of the one DBOS instance a benchmark run shares across scenarios."""

from __future__ import annotations

import asyncio
import logging

from dbos import DBOS, DBOSConfig

from bench.marks import MARKS, now

__all__ = [
    "APP_VERSION",
    "DRAIN_QUEUE",
    "PICKUP_QUEUE",
    "block",
    "launch",
    "one_step",
    "replay",
    "shutdown",
    "sleeper",
    "steps",
    "steps_sync",
]

APP_VERSION = "durable-bench"
"""Pinned, so the replay child process and this one serve the same workflows."""
PICKUP_QUEUE = "bench_pickup"
DRAIN_QUEUE = "bench_drain"
"""The prefix of the drain's queues, one per rep."""


@DBOS.step()
async def timed(i: int) -> int:
    MARKS.step_times.append(now())
    return i


@DBOS.step()
def timed_sync(i: int) -> int:
    MARKS.step_times.append(now())
    return i


@DBOS.workflow()
def steps_sync(n: int) -> int:
    """DBOS's synchronous API (the workflow runs in a thread): ``steps`` without async."""
    for i in range(n):
        timed_sync(i)
    return n


@DBOS.step()
async def noop(i: int) -> int:
    return i


@DBOS.step()
async def block() -> None:
    if MARKS.child:
        print(f"ready {DBOS.workflow_id}", flush=True)
        await asyncio.Event().wait()


@DBOS.workflow()
async def steps(n: int) -> int:
    for i in range(n):
        await timed(i)
    return n


@DBOS.workflow()
async def one_step() -> int:
    return await noop(0)


@DBOS.workflow()
async def replay(n: int) -> int:
    MARKS.body_entry = now()
    for i in range(n):
        await noop(i)
    MARKS.replayed = now()
    await block()
    return n


@DBOS.workflow()
async def sleeper() -> None:
    MARKS.parked += 1
    await DBOS.sleep_async(86_400)


def config(url: str, executor_id: str | None = None) -> DBOSConfig:
    cfg: DBOSConfig = {
        "name": "durable-bench",
        "system_database_url": url,
        "application_version": APP_VERSION,
        "log_level": "WARNING",
    }
    if executor_id is not None:
        cfg["executor_id"] = executor_id
    return cfg


async def launch(url: str, executor_id: str | None = None, *, queues: bool = True) -> None:
    """Create and launch DBOS on ``url`` with its default settings, then (``queues``)
    register ``bench_pickup`` as DBOS makes it. The drain registers a queue of its own per
    rep (``bench_drain_<rep>``, held with ``worker_concurrency=0`` until its clock starts;
    see ``runs_dbos.drain``)."""
    logging.getLogger("dbos").setLevel(logging.WARNING)
    DBOS(config=config(url, executor_id))
    await asyncio.to_thread(DBOS.launch)
    if queues:
        await DBOS.register_queue_async(PICKUP_QUEUE)


async def shutdown() -> None:
    """Destroy DBOS. Workflows still asleep (parked-runs scenario) are cancelled when the
    event loop closes; DBOS's warning for each of them is silenced."""
    await asyncio.to_thread(DBOS.destroy)
    logging.getLogger("dbos").setLevel(logging.CRITICAL)
