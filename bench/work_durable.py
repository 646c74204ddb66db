"""The durable workflows the scenarios run: no-op steps, timed where a scenario needs it."""

from __future__ import annotations

import asyncio
import sys

import anyio

from bench.marks import MARKS, now
from durable import current_run, step, workflow

__all__ = [
    "HOLD",
    "Hold",
    "block",
    "held",
    "hold",
    "noop",
    "one_step",
    "replay",
    "sleeper",
    "steps",
    "timed",
]


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


class Hold:
    """Keeps ``bench.hold`` step bodies waiting in-process until released."""

    def __init__(self) -> None:
        self.holding = 0
        self._released: asyncio.Event | None = None

    def _event(self) -> asyncio.Event:
        if self._released is None:
            self._released = asyncio.Event()
        return self._released

    def reset(self) -> None:
        self.holding = 0
        self._released = None

    def release(self) -> None:
        self._event().set()

    async def wait(self) -> None:
        self.holding += 1
        await self._event().wait()


HOLD = Hold()


@step(name="bench.hold")
async def hold() -> int:
    """Waits in-process until the in-flight scenario releases every run."""
    await HOLD.wait()
    return 0


@workflow(name="bench.held")
async def held() -> int:
    return await hold()
