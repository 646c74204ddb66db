"""``python -m bench``: run the benchmark scenarios, print the table, write the JSON.

Usage: ``python -m bench [--quick] [--only NAME ...] [--reps N] [--database-url URL]
[--output PATH] [--prune-runs N]``. Scenario names: floor, step, throughput, drain, pickup,
replay, replayer, dashboard, hooks, pgqueuer, scaling, prune, commits, inflight, parked. The
floor always runs first: every figure is also given in raw commits. ``events``: the event
stream's cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import history, scaling, scenarios_hooks, scenarios_latency, scenarios_load
from bench.agents import Harness
from bench.databases import ENV_VAR, Databases, databases
from bench.harness import Bench
from bench.report import Figure, render_table, write_json

Scenario = Callable[[Harness], Awaitable[list[Figure]]]

SCENARIOS: dict[str, Scenario] = {
    "floor": scenarios_latency.floor,
    "step": scenarios_latency.step_latency,
    "events": scenarios_latency.events,
    "throughput": scenarios_load.throughput,
    "drain": scenarios_load.drain,
    "pickup": scenarios_latency.pickup,
    "replay": scenarios_latency.replay,
    "replayer": scenarios_latency.replayer,
    "dashboard": scenarios_latency.dashboard,
    "hooks": scenarios_hooks.hooks,
    "pgqueuer": scenarios_load.pgqueuer,
    "scaling": scaling.scaling,
    "prune": history.prune,
    "commits": history.commits,
    "inflight": scenarios_load.inflight,
    "parked": scenarios_load.parked,  # last: it leaves 10,000 DBOS coroutines asleep
}
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "latest.json"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 rep and smaller batches")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SCENARIO",
        help=f"run only these scenarios (repeat or comma-separate): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--reps", type=int, default=None, help="reps per system (default 3)")
    parser.add_argument("--prune-runs", type=int, default=None, metavar="N",
                        help="finished runs the prune scenario prunes (default 1,000,000; "
                        "20,000 with --quick)")  # fmt: skip
    parser.add_argument(
        "--database-url", default=None, help=f"server to use (default ${ENV_VAR}, else embedded)"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON report path")
    args = parser.parse_args(argv)
    only = [name for item in args.only for name in item.split(",") if name]
    unknown = sorted(set(only) - set(SCENARIOS))
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    args.selected = [name for name in SCENARIOS if not only or name in only or name == "floor"]
    args.reps = args.reps or (1 if args.quick else 3)
    return args


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _meta(args: argparse.Namespace, dbs: Databases, started: float) -> dict[str, Any]:
    return {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "scenarios": args.selected,
        "reps": args.reps,
        "quick": args.quick,
        "machine": {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "postgres": dbs.server_version,
            "embedded_postgres": dbs.embedded,
        },
        "versions": {d: _version(d) for d in ("durable-sdk", "dbos", "pgqueuer", "asyncpg")},
    }


async def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    figures: list[Figure] = []
    async with databases(args.database_url) as dbs:
        bench = Bench(
            dbs.durable, dbs.dbos, dbs.pgq, reps=args.reps, quick=args.quick,
            prune_runs=args.prune_runs,
        )  # fmt: skip
        harness = Harness(bench)
        try:
            for name in args.selected:
                print(f"== {name}", file=sys.stderr, flush=True)
                figures.extend(await SCENARIOS[name](harness))
        finally:
            await harness.close()
        meta = _meta(args, dbs, started)
    print()
    print(render_table(figures, harness.commit))
    print(
        f"\n'vs DBOS' = DBOS median / this median (higher is faster); 'commits' = median per"
        f" item / one raw commit ({(harness.commit or 0) * 1000:.3f} ms)."
        f" {meta['machine']['cpus']} CPUs, PostgreSQL {dbs.server_version},"
        f" {meta['seconds']} s."
    )
    write_json(args.output, figures, harness.commit, meta)
    print(f"JSON: {args.output}")
    return 0


def main() -> None:
    args = parse_args(sys.argv[1:])
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
