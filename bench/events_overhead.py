"""What the lifecycle event stream costs the hot path, and how soon a consumer sees events.

The event log is written by triggers (migration 0012) in the transactions that record
steps and change run statuses. This scenario runs durable's ``step`` scenario three ways,
alternating reps on one database: *events on* (as shipped), *events off* (the event
triggers disabled for the rep: durable as it was before the stream existed) and *tailed*
(events on, with an ``engine.events`` consumer running in the same process).
*start -> run.completed event*: in the tailed rep, from ``engine.start`` to the consumer
yielding that run's ``run.completed`` event.
"""

from __future__ import annotations

import itertools

import anyio
import asyncpg

from bench import work_durable as W
from bench.harness import Bench, RepOut
from bench.marks import MARKS, now
from durable import Engine

__all__ = ["events_off", "events_on", "events_tailed"]

TIMEOUT = 180.0
_TRIGGERS = (
    ("durable.runs", "runs_event_log"),
    ("durable.steps", "steps_event_log_insert"),
    ("durable.steps", "steps_event_log_update"),
)


async def _set_triggers(url: str, enabled: bool) -> None:
    conn = await asyncpg.connect(url)
    try:
        verb = "ENABLE" if enabled else "DISABLE"
        for table, trigger in _TRIGGERS:
            await conn.execute(f"ALTER TABLE {table} {verb} TRIGGER {trigger}")
    finally:
        await conn.close()


class _Tail:
    """When the consumer saw each run's run.completed, and a wake-up for the waiter."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.changed = anyio.Event()

    def add(self, run_id: str) -> None:
        self.seen[run_id] = now()
        self.changed.set()
        self.changed = anyio.Event()

    async def wait(self, run_id: str) -> float:
        while run_id not in self.seen:
            await self.changed.wait()
        return self.seen[run_id]


async def _steps(bench: Bench, engine: Engine, tailed: _Tail | None) -> RepOut:
    per_wf: list[float] = []
    per_step: list[float] = []
    seen: list[float] = []
    for _ in range(5):  # warm-up
        await (await engine.start(W.steps, 10)).result(timeout=TIMEOUT)
    for _ in range(bench.n("step")):
        MARKS.reset()
        t0 = now()
        handle = await engine.start(W.steps, 10)
        await handle.result(timeout=TIMEOUT)
        per_wf.append(now() - t0)
        per_step.extend(b - a for a, b in itertools.pairwise(MARKS.step_times))
        if tailed is not None:
            seen.append(await tailed.wait(str(handle.run_id)) - t0)
    out = {"workflow": per_wf, "step": per_step}
    if tailed is not None:
        out["seen"] = seen
    return RepOut(out)


async def events_on(bench: Bench, rep: int) -> RepOut:
    async with Engine(bench.durable_url, workflows=[W.steps]) as engine:
        return await _steps(bench, engine, None)


async def events_off(bench: Bench, rep: int) -> RepOut:
    await _set_triggers(bench.durable_url, False)
    try:
        async with Engine(bench.durable_url, workflows=[W.steps]) as engine:
            return await _steps(bench, engine, None)
    finally:
        await _set_triggers(bench.durable_url, True)


async def events_tailed(bench: Bench, rep: int) -> RepOut:
    completed = _Tail()
    async with Engine(bench.durable_url, workflows=[W.steps]) as engine:
        since = await engine.event_cursor()

        async def tail() -> None:
            async for event in engine.events(since=since, kinds=["run.completed"]):
                completed.add(str(event.run_id))

        async with anyio.create_task_group() as tg:
            tg.start_soon(tail)
            out = await _steps(bench, engine, completed)
            tg.cancel_scope.cancel()
    return out
