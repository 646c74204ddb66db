"""Load for the chaos tests that break things under many runs: start ``chaos.ten_steps``
runs, wait for them to finish, and audit what the database and the marks file say.

The audit proves invariant 1 under faults: every run completed with its ten records, each
(run, cursor key) recorded once, and no step body started again after its record
committed. A body runs again only when its record was lost (its connection or worker
died first); those re-runs are counted, not failed. Ticks run one after another, each once
the previous one's record is acknowledged, so a tick that runs again after a later tick
of its run started means an acknowledged record went missing (``lost_acks``: a failover
to a standby that lacked it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import anyio
import asyncpg

from durable import Engine
from tests.chaos.worker_app import TEN_STEPS, WORKFLOWS, read_marks, ten_steps

# The test's own connections carry this name, so the terminator leaves them alone.
OBSERVER = "durable_chaos_observer"


def observer_url(database_url: str) -> str:
    """``database_url`` with the observer's application_name (asyncpg takes unknown query
    parameters as server settings)."""
    joiner = "&" if "?" in database_url else "?"
    return f"{database_url}{joiner}application_name={OBSERVER}"


async def start_runs(engine: Engine, prefix: str, count: int) -> dict[UUID, str]:
    """Start ``count`` ten-step runs; return run id -> order label."""
    started: dict[UUID, str] = {}
    for n in range(count):
        order = f"{prefix}{n}"
        handle = await engine.start(ten_steps, order)
        started[handle.run_id] = order
    return started


def client(database_url: str) -> Engine:
    """A client-only engine for starting runs, on observer connections."""
    return Engine(observer_url(database_url), worker=False, workflows=WORKFLOWS)


async def statuses(db: asyncpg.Connection, run_ids: list[UUID]) -> Counter[str]:
    rows = await db.fetch(
        "SELECT status, count(*) AS n FROM durable.runs WHERE id = ANY($1) GROUP BY status",
        run_ids,
    )
    return Counter({row["status"]: row["n"] for row in rows})


async def wait_finished(
    db: asyncpg.Connection,
    run_ids: list[UUID],
    timeout: float,
    alive: Callable[[], None] | None = None,
) -> Counter[str]:
    """Wait until no run of ``run_ids`` is unfinished; ``alive()`` is checked meanwhile."""
    unfinished = {"pending", "running", "sleeping", "waiting"}
    with anyio.fail_after(timeout):
        while True:
            counts = await statuses(db, run_ids)
            if not unfinished & set(counts):
                return counts
            if alive is not None:
                alive()
            await anyio.sleep(0.2)


@dataclass
class Audit:
    """What the database and the marks say about a finished load."""

    runs: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    bodies: int = 0
    """Step bodies started, across all processes."""
    reruns: int = 0
    """Bodies that ran again because their record never committed (allowed)."""
    after_commit: list[str] = field(default_factory=list)
    """Bodies started after their step's record committed (must be none)."""
    bad_records: list[str] = field(default_factory=list)
    """Runs whose records are not exactly their ten completed steps."""
    lost_acks: list[str] = field(default_factory=list)
    """Ticks that ran again after a later tick of their run had started (must be none)."""

    def summary(self) -> str:
        return (
            f"runs={self.runs} statuses={dict(self.statuses)} bodies={self.bodies} "
            f"reruns={self.reruns} after_commit={len(self.after_commit)} "
            f"bad_records={len(self.bad_records)} lost_acks={len(self.lost_acks)}"
        )


async def audit(db: asyncpg.Connection, started: dict[UUID, str], marks: Path) -> Audit:
    result = Audit(runs=len(started), statuses=await statuses(db, list(started)))
    rows = await db.fetch(
        "SELECT run_id, cursor_key, status, output, attempt,"
        " extract(epoch FROM finished_at)::float8 AS committed"
        " FROM durable.steps WHERE run_id = ANY($1)",
        list(started),
    )
    committed: dict[tuple[str, int], float] = {}
    per_run: dict[UUID, list[str]] = {}
    for row in rows:
        order = started[row["run_id"]]
        per_run.setdefault(row["run_id"], []).append(row["cursor_key"])
        i = int(row["cursor_key"].rpartition("#")[2])
        if row["status"] != "completed" or row["attempt"] != 1:
            result.bad_records.append(f"{order} {row['cursor_key']} {row['status']}")
        committed[(order, i)] = row["committed"]
    expected = sorted(f"step:chaos.tick#{i}" for i in range(TEN_STEPS))
    for run_id, order in started.items():
        if sorted(per_run.get(run_id, [])) != expected:
            result.bad_records.append(f"{order}: {sorted(per_run.get(run_id, []))}")
    orders = set(started.values())
    ran: Counter[tuple[str, int]] = Counter()
    furthest: dict[str, int] = {}
    for event, pid in read_marks(marks):
        kind, _, rest = event.partition(" ")
        if kind != "tick":
            continue
        order, i, at = rest.split(" ")
        if order not in orders:
            continue
        key = (order, int(i))
        ran[key] += 1
        if furthest.get(order, -1) > int(i):
            result.lost_acks.append(f"{order} tick#{i} after tick#{furthest[order]} in pid {pid}")
        furthest[order] = max(furthest.get(order, -1), int(i))
        result.bodies += 1
        # The record's finished_at is its transaction's start, before its commit.
        if key in committed and float(at) > committed[key]:
            result.after_commit.append(f"{order} tick#{i} started {at} in pid {pid}")
    result.reruns = sum(n - 1 for n in ran.values() if n > 1)
    return result
