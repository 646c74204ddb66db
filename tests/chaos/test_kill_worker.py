"""A worker killed with SIGKILL in the middle of a step loses nothing and repeats nothing
recorded: another worker takes the run over when the lease expires and finishes it.

Invariants 1 (recorded once) and 3 (nothing is lost), with real processes: the first
worker records ``chaos.prepare``, starts ``chaos.charge`` and is killed inside its body.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import anyio
import asyncpg
import pytest

from durable import Engine
from tests.chaos.conftest import WorkerProcesses
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
