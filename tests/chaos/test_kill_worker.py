"""A worker killed with SIGKILL in the middle of a step loses nothing and repeats nothing
recorded: another worker takes the run over when the lease expires and finishes it.

Invariants 1 (recorded once) and 3 (nothing is lost), with real processes: the first
worker records ``chaos.prepare``, starts ``chaos.charge`` and is killed inside its body.
The soak kills workers over and over under a load of ten-step runs: ``DURABLE_SOAK_KILLS``
kills (20 in the suite; ``nox -s soak`` runs 100 or more).
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections import Counter
from pathlib import Path
from uuid import UUID

import anyio
import asyncpg
import pytest

from durable import Engine
from tests.chaos.conftest import WorkerProcesses
from tests.chaos.load import audit, client, observer_url, start_runs, statuses, wait_finished
from tests.chaos.worker_app import LEASE_SECONDS, WORKFLOWS, checkout, read_marks

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]

# Python start-up and engine entry of the second worker overlap the lease wait; this is
# the slack on top of one lease period for the takeover, replay and the rest of the run.
SLACK_SECONDS = 4.0


async def _wait_for_mark(
    marks: Path, event: str, proc: subprocess.Popen[bytes], timeout: float
) -> None:
    with anyio.fail_after(timeout):
        while not any(e == event for e, _ in read_marks(marks)):
            assert proc.poll() is None, f"worker {proc.pid} exited with {proc.returncode}"
            await anyio.sleep(0.02)


@pytest.mark.parametrize("round", range(10))
async def test_sigkill_mid_step_is_finished_by_another_worker(
    round: int,
    database_url: str,
    db: asyncpg.Connection,
    workers: WorkerProcesses,
    tmp_path: Path,
) -> None:
    marks = tmp_path / "marks.log"
    order = f"order-{round}"
    async with Engine(database_url, worker=False, workflows=WORKFLOWS, poll_interval=0.2) as engine:
        handle = await engine.start(checkout, order)
        first = workers.spawn(database_url, marks, slow_seconds=60)
        await _wait_for_mark(marks, "charge:start", first, timeout=20)

        workers.kill(first)
        killed_at = time.monotonic()
        second = workers.spawn(database_url, marks)
        result = await handle.result(timeout=LEASE_SECONDS + SLACK_SECONDS + 5)
        took = time.monotonic() - killed_at

    assert result == [f"prepared {order}", f"charged {order}"]
    assert took <= LEASE_SECONDS + SLACK_SECONDS, f"takeover took {took:.1f}s after the kill"

    seen = read_marks(marks)
    counts = Counter(event for event, _ in seen)
    # The step recorded before the kill ran once, in the first worker, and never again.
    assert counts["prepare:start"] == 1, seen
    assert counts["prepare:end"] == 1, seen
    assert [pid for e, pid in seen if e == "prepare:start"] == [first.pid]
    # The interrupted step ran at most twice, and completed once: in the second worker.
    assert 1 <= counts["charge:start"] <= 2, seen
    assert [pid for e, pid in seen if e == "charge:end"] == [second.pid], seen

    steps = await db.fetch(
        "SELECT cursor_key, status, attempt FROM durable.steps WHERE run_id = $1 ORDER BY seq",
        handle.run_id,
    )
    assert [tuple(s) for s in steps] == [
        ("step:chaos.prepare#0", "completed", 1),
        ("step:chaos.charge#0", "completed", 1),
    ]
    run = await db.fetchrow(
        "SELECT status, attempt, lease_owner FROM durable.runs WHERE id = $1", handle.run_id
    )
    assert tuple(run) == ("completed", 2, None)  # claimed by the killed worker, then once more


SOAK_KILLS_ENV = "DURABLE_SOAK_KILLS"
SOAK_WORKERS = 2
SOAK_BACKLOG = 30  # unfinished runs kept in the queue while killing
SOAK_TICK_SECONDS = 0.01  # each step takes a moment, so kills land inside step bodies
UNFINISHED = ("pending", "running", "sleeping", "waiting")


class Soak:
    """Keeps ``SOAK_WORKERS`` workers serving while killing one at a time."""

    def __init__(self, workers: WorkerProcesses, database_url: str, marks: Path) -> None:
        self.workers, self.database_url, self.marks = workers, database_url, marks
        self.serving: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()

    def spawn(self) -> None:
        proc = self.workers.spawn(self.database_url, self.marks, tick_seconds=SOAK_TICK_SECONDS)
        self.serving.append(proc)

    def check_alive(self) -> None:
        """No worker exits except by our SIGKILL."""
        for proc in self.serving:
            assert proc.poll() is None, f"worker {proc.pid} exited with {proc.returncode}"

    async def kill_one(self) -> None:
        """SIGKILL the oldest worker once it serves, and start its replacement."""
        victim = self.serving[0]
        with anyio.fail_after(60):
            while not self.workers.ready(victim):
                self.check_alive()
                await anyio.sleep(0.05)
        await anyio.sleep(random.uniform(0.2, 0.8))  # let it claim and start steps
        self.check_alive()
        self.workers.kill(victim)
        self.killed.add(victim.pid)
        self.serving.remove(victim)
        self.spawn()


def soak_kills() -> int:
    return int(os.environ.get(SOAK_KILLS_ENV, "20"))


async def test_soak_sigkilled_workers_under_load_lose_and_repeat_nothing(
    database_url: str, workers: WorkerProcesses, tmp_path: Path
) -> None:
    kills = soak_kills()
    marks = tmp_path / "marks.log"
    soak = Soak(workers, database_url, marks)
    for _ in range(SOAK_WORKERS):
        soak.spawn()
    began = time.monotonic()
    started: dict[UUID, str] = {}
    db = await asyncpg.connect(observer_url(database_url))
    try:
        async with client(database_url) as engine:
            for n in range(kills):
                busy = await statuses(db, list(started))
                backlog = sum(busy[s] for s in UNFINISHED)
                if backlog < SOAK_BACKLOG:
                    started |= await start_runs(engine, f"k{n}-", SOAK_BACKLOG - backlog)
                await soak.kill_one()
        finished = await wait_finished(
            db, list(started), timeout=60 + kills, alive=soak.check_alive
        )
        result = await audit(db, started, marks)
    finally:
        await db.close()
    took = time.monotonic() - began

    print(
        f"\nsoak: runs={len(started)} kills={len(soak.killed)} "
        f"failed={finished['failed']} duplicates={len(result.after_commit)} "
        f"reruns={result.reruns} seconds={took:.1f} ({result.summary()})"
    )
    assert len(soak.killed) == kills
    assert finished == {"completed": len(started)}, result.summary()
    assert result.bad_records == [], result.bad_records[:10]
    assert result.after_commit == [], result.after_commit[:10]
    assert "Traceback" not in workers.output()
