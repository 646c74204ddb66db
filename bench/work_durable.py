"""The durable workflows the scenarios run: no-op steps, timed where a scenario needs it."""

from __future__ import annotations

import sys

import anyio

from bench.marks import MARKS, now
from durable import current_run, step, workflow

__all__ = ["block", "noop", "one_step", "replay", "sleeper", "steps", "timed"]


@step(name="bench.timed")
async def timed(i: int) -> int:
    """A no-op step that stamps when its body starts."""
    MARKS.step_times.append(now())
    return i


@step(name="bench.noop")
async def noop(i: int) -> int:
    return i


@step(name="bench.block")
async def block() -> None:
    """Blocks forever in the replay child (after telling the parent), else returns."""
    if MARKS.child:
        print(f"ready {current_run().run_id}", flush=True)
        await anyio.sleep_forever()


@workflow(name="bench.steps")
async def steps(n: int) -> int:
    """``n`` timed no-op steps in sequence."""
    for i in range(n):
        await timed(i)
    return n


@workflow(name="bench.one_step")
async def one_step() -> int:
    return await noop(0)


@workflow(name="bench.replay")
async def replay(n: int) -> int:
    """``n`` recorded no-op steps, stamped before and after, then a step that blocks in
    the child process so its worker can be killed with every record written."""
    MARKS.body_entry = now()
    for i in range(n):
        await noop(i)
    MARKS.replayed = now()
    await block()
    return n


@workflow(name="bench.sleeper")
async def sleeper() -> None:
    """Stands for the parked runs the parked-runs scenario inserts; never executed."""
    print("bench.sleeper should never run", file=sys.stderr)
