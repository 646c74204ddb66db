"""A poison run (every worker that runs it dies before it records anything) fails with
``RunAttemptsExhausted`` after ``max_run_attempts`` lost executions, instead of
crash-looping workers for ever. Real worker processes, killed with SIGKILL."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import pytest

from durable import Engine, RunAttemptsExhausted, RunStatus, WorkflowFailed
from tests.chaos.conftest import WorkerProcesses
from tests.chaos.worker_app import MARKS_ENV, MAX_ATTEMPTS_ENV, WORKFLOWS, poison, read_marks

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]


def _starts(marks: Path) -> int:
    return sum(1 for event, _ in read_marks(marks) if event == "hang:start")


async def _wait_for_starts(marks: Path, count: int, proc: subprocess.Popen[bytes]) -> None:
    with anyio.fail_after(30):
        while _starts(marks) < count:
            assert proc.poll() is None, f"worker {proc.pid} exited with {proc.returncode}"
            await anyio.sleep(0.02)


async def test_a_run_killed_three_times_fails_with_run_attempts_exhausted(
    database_url: str, workers: WorkerProcesses, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.log"
    env = {MARKS_ENV: str(marks), MAX_ATTEMPTS_ENV: "3"}
    async with Engine(database_url, worker=False, workflows=WORKFLOWS, poll_interval=0.2) as engine:
        handle = await engine.start(poison)
        for kill in range(1, 4):
            proc = workers.spawn_module("tests.chaos.worker_app", database_url, env)
            await _wait_for_starts(marks, kill, proc)
            workers.kill(proc)

        workers.spawn_module("tests.chaos.worker_app", database_url, env)
        with pytest.raises(WorkflowFailed) as caught:
            await handle.result(timeout=30)
        detail = await engine.get_run(handle.run_id)

    assert caught.value.error.code == RunAttemptsExhausted.code == "run_attempts_exhausted"
    assert "3 executions in a row" in caught.value.error.message
    assert detail.status == RunStatus.FAILED
    assert _starts(marks) == 3  # the fourth claim failed it without running its code
