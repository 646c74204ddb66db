"""Where a worker's time goes: ``python -m bench.profile_drain URL [--runs N] [--profile]``.

Queues N one-step runs with a client engine, then drains them with a fresh worker engine
in this process and prints the worker's Python CPU per run (``time.process_time``), the
commits per run (``pg_stat_database``) and, with ``--profile``, the top functions by own
time under cProfile (which itself slows the drain; the CPU figure is taken without it).
The database at URL gets durable's schema; its runs tables are emptied first.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time

import asyncpg

from bench import work_durable as W
from bench.costs import Costs
from durable import Engine

__all__ = ["drain_once", "main"]

DONE = "SELECT count(*) FROM durable.runs WHERE status = 'completed'"


async def drain_once(url: str, runs: int, profiler: cProfile.Profile | None = None) -> str:
    """Queue ``runs`` one-step runs, drain them; return the figures as one line."""
    async with Engine(url, workflows=[W.one_step], worker=False) as client:
        conn = await asyncpg.connect(url)
        await conn.execute("TRUNCATE durable.runs, durable.steps, durable.workers CASCADE")
        await conn.close()
        await asyncio.gather(*(client.start(W.one_step) for _ in range(runs)))
    costs = Costs(url)
    await costs.begin()
    conn = await asyncpg.connect(url)
    polls = 0
    costs.cpu_begin()
    t0 = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    async with Engine(url, workflows=[W.one_step]):
        while await conn.fetchval(DONE) < runs:
            polls += 1
            await asyncio.sleep(0.01)
    if profiler is not None:
        profiler.disable()
    elapsed = time.perf_counter() - t0
    costs.cpu_end()
    await conn.close()
    await costs.end(excluded=polls + 1)
    return f"{runs / elapsed:,.0f} runs/s; {costs.note(runs)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print("warm-up:", asyncio.run(drain_once(args.url, 200)))
    print("drain:  ", asyncio.run(drain_once(args.url, args.runs)))
    if args.profile:
        profiler = cProfile.Profile()
        print("profiled:", asyncio.run(drain_once(args.url, args.runs, profiler)))
        pstats.Stats(profiler).sort_stats("tottime").print_stats(35)


if __name__ == "__main__":
    main()
