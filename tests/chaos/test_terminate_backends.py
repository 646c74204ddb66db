"""Connections terminated at random under load: no run fails, no worker exits, nothing is
recorded twice (invariants 1, 3 and 8).

Two worker processes execute waves of a few hundred ten-step runs while the test calls
``pg_terminate_backend`` on a random active backend of the test database every 20-100 ms,
and now and then on an idle one (a pooled connection, the listener). A terminated
connection is one a worker must discard, and the work on it is retried or left to the
run's lease; it is never a step's or a run's error and never ends a worker.
"""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path
from uuid import UUID

import anyio
import asyncpg
import pytest

from tests.chaos.conftest import WorkerProcesses
from tests.chaos.load import OBSERVER, audit, client, observer_url, start_runs, wait_finished

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]

RUNS = 400
"""Runs per wave; waves go on until enough terminations fell while runs executed."""
MIN_TERMINATIONS = 20
MAX_WAVES = 5
TICK_SECONDS = 0.005
# Every this many terminations, any backend of a worker (often an idle pooled connection
# or the listener) rather than an active one.
ANY_BACKEND_EVERY = 5

_PICK = """
SELECT pg_terminate_backend(pid) FROM (
    SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND backend_type = 'client backend' AND application_name <> $1
      AND ($2 OR state = 'active')
    ORDER BY random() LIMIT 1
) AS victim
"""


class Terminator:
    """Terminates random backends of the test database until stopped."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.terminated = 0
        self.attempts = 0

    async def run(self) -> None:
        conn = await asyncpg.connect(observer_url(self.database_url))
        try:
            while True:
                await anyio.sleep(random.uniform(0.02, 0.1))
                self.attempts += 1
                any_backend = self.attempts % ANY_BACKEND_EVERY == 0
                if await conn.fetchval(_PICK, OBSERVER, any_backend):
                    self.terminated += 1
        finally:
            await conn.close()


def _alive(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        assert proc.poll() is None, f"worker {proc.pid} exited with {proc.returncode}"


async def test_random_backend_terminations_fail_no_run_and_stop_no_worker(
    database_url: str, workers: WorkerProcesses, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.log"
    procs = [workers.spawn(database_url, marks, tick_seconds=TICK_SECONDS) for _ in range(2)]
    with anyio.fail_after(60):
        while not all(workers.ready(p) for p in procs):
            _alive(procs)
            await anyio.sleep(0.1)

    began = time.monotonic()
    terminator = Terminator(database_url)
    db = await asyncpg.connect(observer_url(database_url))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(terminator.run)
            started: dict[UUID, str] = {}
            async with client(database_url) as engine:
                # A faster worker finishes a wave sooner, under fewer terminations.
                for wave in range(MAX_WAVES):
                    started |= await start_runs(engine, f"t{wave}.", RUNS)
                    await wait_finished(db, list(started), timeout=100,
                                        alive=lambda: _alive(procs))  # fmt: skip
                    if terminator.terminated >= MIN_TERMINATIONS:
                        break
            tg.cancel_scope.cancel()
        took = time.monotonic() - began
        _alive(procs)
        result = await audit(db, started, marks)
    finally:
        await db.close()

    print(f"terminations={terminator.terminated} {result.summary()} seconds={took:.1f}")
    assert terminator.terminated >= MIN_TERMINATIONS, "too few terminations to mean anything"
    assert result.statuses == {"completed": len(started)}, result.summary()
    assert result.bad_records == [], result.bad_records[:10]
    assert result.after_commit == [], result.after_commit[:10]
    # Every error the terminations caused was taken for what it is: infrastructure.
    assert "Traceback" not in workers.output()
