"""Several worker processes under one supervisor, with real processes and real signals.

A child killed with SIGKILL is restarted and the run it held resumes once its lease
expires; SIGTERM to the supervisor drains every child (each exits 0, and so does the
supervisor), and every run started before it either finished or is finished later by
another worker, with each step recorded once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections import Counter
from pathlib import Path
from uuid import UUID

import anyio
import asyncpg
import pytest

from durable import Engine
from tests.chaos.conftest import WorkerProcesses
from tests.chaos.load import observer_url, statuses, wait_finished
from tests.chaos.worker_app import MARKS_ENV, SLOW_ENV, WORKFLOWS, checkout, read_marks

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]

BANNER = re.compile(rb"worker \S+:(\d+):\w+ serving")


def _log_of(workers: WorkerProcesses, proc: subprocess.Popen[bytes]) -> bytes:
    [log] = [path for started, path in workers.started if started is proc]
    return log.read_bytes() if log.exists() else b""


async def _serving_pids(
    workers: WorkerProcesses, proc: subprocess.Popen[bytes], count: int
) -> list[int]:
    """Wait until ``count`` distinct child pids have said they serve; return them in order."""
    with anyio.fail_after(90):
        while True:
            found = [int(pid) for pid in BANNER.findall(_log_of(workers, proc))]
            if len(set(found)) >= count:
                return list(dict.fromkeys(found))
            assert proc.poll() is None, f"supervisor exited with {proc.returncode}"
            await anyio.sleep(0.05)


async def _charging_pids(marks: Path, count: int) -> set[int]:
    """Wait until ``count`` distinct processes have started a ``chaos.charge`` body."""
    with anyio.fail_after(60):
        while True:
            pids = {pid for event, pid in read_marks(marks) if event == "charge:start"}
            if len(pids) >= count:
                return pids
            await anyio.sleep(0.02)


def _spawn(
    workers: WorkerProcesses, argv: list[str], database_url: str, marks: Path, slow: float
) -> subprocess.Popen[bytes]:
    env = {MARKS_ENV: str(marks), SLOW_ENV: str(slow), "DURABLE_DATABASE_URL": database_url}
    return workers.spawn_argv(argv, env)


async def test_a_child_killed_with_sigkill_is_restarted_and_its_run_resumes(
    database_url: str, db: asyncpg.Connection, workers: WorkerProcesses, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.log"
    argv = ["-m", "durable", "worker", "--app", "tests.chaos.supervised_app:engine",
            "--processes", "2", "--database-url", database_url]  # fmt: skip
    supervisor = _spawn(workers, argv, database_url, marks, slow=3)
    first_pids = await _serving_pids(workers, supervisor, 2)
    async with Engine(observer_url(database_url), worker=False, workflows=WORKFLOWS) as client:
        handle = await client.start(checkout, "o-1")
        [holder] = await _charging_pids(marks, 1)
        assert holder in first_pids
        os.kill(holder, signal.SIGKILL)  # mid-step: charge:start marked, its record not

        # The supervisor notices, and a new child takes the dead one's place.
        pids = await _serving_pids(workers, supervisor, 3)
        assert holder not in pids[2:]
        assert b"killed by SIGKILL; restarting it" in _log_of(workers, supervisor)
        assert await handle.result(timeout=60) == ["prepared o-1", "charged o-1"]

    seen = read_marks(marks)
    counts = Counter(event for event, _ in seen)
    assert counts["prepare:start"] == 1, seen  # recorded before the kill: never run again
    assert counts["charge:start"] == 2, seen  # the killed attempt, and the one that finished
    assert [pid for event, pid in seen if event == "charge:end"] != [holder]
    steps = await db.fetch(
        "SELECT cursor_key, status FROM durable.steps WHERE run_id = $1 ORDER BY seq",
        handle.run_id,
    )
    assert [(r["cursor_key"], r["status"]) for r in steps] == [
        ("step:chaos.prepare#0", "completed"),
        ("step:chaos.charge#0", "completed"),
    ]
    assert supervisor.poll() is None, "a child's death must not end the supervisor"
    supervisor.send_signal(signal.SIGTERM)
    assert await anyio.to_thread.run_sync(lambda: supervisor.wait(60)) == 0


async def test_sigterm_drains_every_child_and_loses_no_run(
    database_url: str, db: asyncpg.Connection, workers: WorkerProcesses, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.log"
    # run_workers() from a script's __main__, whose factory the children import.
    supervisor = _spawn(
        workers, ["-m", "tests.chaos.supervised_app", "2"], database_url, marks, slow=1
    )
    pids = await _serving_pids(workers, supervisor, 2)
    async with Engine(observer_url(database_url), worker=False, workflows=WORKFLOWS) as client:
        run_ids: list[UUID] = [(await client.start(checkout, f"o-{n}")).run_id for n in range(12)]
        # Both children hold runs (three each at most) when the stop arrives.
        await _charging_pids(marks, 2)
        supervisor.send_signal(signal.SIGTERM)
        assert await anyio.to_thread.run_sync(lambda: supervisor.wait(60)) == 0

    log = _log_of(workers, supervisor)
    for pid in pids:
        assert f"(pid {pid}) stopped: exit status 0".encode() in log, log.decode()
    assert b"killed" not in log, log.decode()
    assert b"restarting" not in log, log.decode()
    # Every step started before the stop finished in its process: nothing ran twice.
    before_stop = Counter(event for event, _ in read_marks(marks))
    assert before_stop["charge:start"] == before_stop["charge:end"]
    assert before_stop["prepare:start"] == before_stop["prepare:end"]
    leftover = await statuses(db, run_ids)
    assert set(leftover) <= {"completed", "pending"}, leftover
    assert leftover["completed"] >= 1

    # The rest were handed back, not lost: another worker finishes them.
    finisher = workers.spawn(database_url, marks)
    counts = await wait_finished(db, run_ids, timeout=90)
    workers.kill(finisher)
    assert counts == Counter({"completed": 12}), counts
    ran = Counter(event for event, _ in read_marks(marks))
    assert ran["prepare:start"] == ran["charge:start"] == 12, ran
    records = await db.fetchval(
        "SELECT count(*) FROM durable.steps WHERE run_id = ANY($1) AND status = 'completed'",
        run_ids,
    )
    assert records == 24


def _gone(pid: int) -> bool:
    """True once ``pid`` exited (a zombie waiting for its new parent counts as exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


async def test_children_stop_by_themselves_when_the_supervisor_is_killed(
    database_url: str, workers: WorkerProcesses, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.log"
    supervisor = _spawn(
        workers, ["-m", "tests.chaos.supervised_app", "2"], database_url, marks, slow=0
    )
    pids = await _serving_pids(workers, supervisor, 2)
    workers.kill(supervisor)  # SIGKILL: no forwarded signal, the children are orphans
    with anyio.fail_after(60):
        while True:
            if all(_gone(pid) for pid in pids):
                break
            await anyio.sleep(0.05)
    log = _log_of(workers, supervisor).decode()
    assert log.count("the supervisor is gone; draining in-flight runs") == 2, log
