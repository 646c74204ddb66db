"""The in-flight rep for durable: worker memory per run executing at once.

1,000 one-step runs are started on a worker with room for all of them; each step body
waits in-process (``bench.hold``) until every run is inside one. The figure is the agent's
VmRSS then, minus before the starts, over the number of runs: the execution, its context,
its task and the awaiting step, plus the client's handle waiting for the result (same
process).
"""

from __future__ import annotations

import asyncio

from bench import work_durable as W
from bench.harness import Bench, RepOut, wait_until
from bench.parked import settled_rss
from durable import Engine

__all__ = ["inflight_durable"]

TIMEOUT = 180.0


async def inflight_durable(bench: Bench, rep: int) -> RepOut:
    n = bench.n("batch")
    async with Engine(bench.durable_url, workflows=[W.held], concurrency=n) as engine:
        W.HOLD.release()
        await (await engine.start(W.held)).result(timeout=TIMEOUT)  # warm-up
        W.HOLD.reset()
        before = await settled_rss()
        handles = [await engine.start(W.held) for _ in range(n)]
        await wait_until(lambda: W.HOLD.holding >= n, timeout=TIMEOUT)
        during = await settled_rss()
        W.HOLD.release()
        await asyncio.gather(*(h.result(timeout=TIMEOUT) for h in handles))
    per_run = (during - before) / n
    note = f"{n:,} runs each waiting in a step; {(during - before) / 2**20:+.1f} MiB in all"
    return RepOut({"memory": [per_run]}, {"memory": note})
