"""A worker killed with SIGKILL while its executions' writes go out combined loses nothing
and records nothing twice.

Under load the worker combines the step records and run finishes of many executions into
one statement and one commit (``durable._record_writer``), and claims runs in batches. The
kill lands while hundreds of runs are in flight on one worker: a batch on the wire either
committed for all its rows or for none, and a second worker finishes every run. The audit
(``tests.chaos.load``) checks each run completed with its ten records written once, and no
step body started again after its record committed.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import asyncpg
import pytest

from tests.chaos.conftest import WorkerProcesses
from tests.chaos.load import audit, client, observer_url, start_runs, wait_finished
from tests.chaos.worker_app import LEASE_SECONDS, read_marks

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]

RUNS = 300
CONCURRENCY = 300
KILL_AFTER_BODIES = 600  # of 3,000: well inside the load
# Rows sharing a transaction share durable.now(): more than one run per commit is a batch.
_BATCHES = """
SELECT count(*) FROM (
    SELECT finished_at FROM durable.steps WHERE run_id = ANY($1)
    GROUP BY finished_at HAVING count(DISTINCT run_id) > 1) AS b
"""


async def test_sigkill_mid_batch_loses_and_repeats_nothing(
    database_url: str, workers: WorkerProcesses, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.log"
    db = await asyncpg.connect(observer_url(database_url))
    try:
        async with client(database_url) as engine:
            started = await start_runs(engine, "batch-", RUNS)
        first = workers.spawn(database_url, marks, concurrency=CONCURRENCY)
        with anyio.fail_after(60):
            while len(read_marks(marks)) < KILL_AFTER_BODIES:
                assert first.poll() is None, f"worker {first.pid} exited with {first.returncode}"
                await anyio.sleep(0.001)
        workers.kill(first)
        batches_before_kill = await db.fetchval(_BATCHES, list(started))
        unfinished = await db.fetchval(
            "SELECT count(*) FROM durable.runs WHERE id = ANY($1) AND status <> 'completed'",
            list(started),
        )
        second = workers.spawn(database_url, marks, concurrency=CONCURRENCY)
        counts = await wait_finished(db, list(started), timeout=LEASE_SECONDS + 60)
        assert second.poll() is None
        result = await audit(db, started, marks)
    finally:
        await db.close()
    # The kill hit a worker that was combining writes, with runs left to finish.
    assert batches_before_kill > 0, "the first worker never combined writes"
    assert unfinished > 0, "the first worker finished every run before the kill"
    assert dict(counts) == {"completed": RUNS}, result.summary()
    assert result.bad_records == [], result.summary()
    assert result.after_commit == [], result.summary()
    assert result.bodies == RUNS * 10 + result.reruns, result.summary()
