"""The in-flight rep for durable: worker memory per run executing at once.

1,000 one-step runs are started on a worker with room for all of them; each step body
waits in-process (``bench.hold``) until every run is inside one. The figure is VmRSS then,
minus before the starts, over the number of runs: the execution, its context, its task
and the awaiting step, plus the client's handle waiting for the result (same process).

It is measured in a fresh process (``python -m bench.inflight URL N`` prints the two
VmRSS readings): in the long-lived agent, memory that earlier scenarios grew and freed is
reused, and the growth read 0 KiB per run after them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bench import work_durable as W
from bench.harness import Bench, RepOut, wait_until
from bench.parked import settled_rss
from durable import Engine

__all__ = ["inflight_durable"]

TIMEOUT = 180.0
ROOT = Path(__file__).resolve().parent.parent


async def inflight_durable(bench: Bench, rep: int) -> RepOut:
    n = bench.n("batch")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.inflight", bench.durable_url, str(n),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"the in-flight child failed: {err.decode(errors='replace')[-800:]}")
    before, during = (int(word) for word in out.split())
    per_run = (during - before) / n
    note = f"{n:,} runs each waiting in a step; {(during - before) / 2**20:+.1f} MiB in all"
    return RepOut({"memory": [per_run]}, {"memory": note})


async def _measure(url: str, n: int) -> tuple[int, int]:
    """VmRSS before the starts and with all ``n`` runs inside their steps."""
    async with Engine(url, workflows=[W.held], concurrency=n) as engine:
        W.HOLD.release()
        await (await engine.start(W.held)).result(timeout=TIMEOUT)  # warm-up
        W.HOLD.reset()
        before = await settled_rss()
        handles = [await engine.start(W.held) for _ in range(n)]
        await wait_until(lambda: W.HOLD.holding >= n, timeout=TIMEOUT)
        during = await settled_rss()
        W.HOLD.release()
        await asyncio.gather(*(h.result(timeout=TIMEOUT) for h in handles))
    return before, during


if __name__ == "__main__":
    readings = asyncio.run(_measure(sys.argv[1], int(sys.argv[2])))
    print(*readings)
