"""A queue's concurrency limit holds across worker processes, because the claim enforces it.

Three ``python -m tests.chaos.queue_app`` processes serve the managed queue ``limited``
(``concurrency=2``), each with room for four runs of its own. Every step execution marks
its start and end with its pid; the tests rebuild the intervals and count the most that
ever overlapped. The step body runs strictly inside the claim-to-finish window of its run,
so more than two overlapping bodies would prove more than two claims at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from durable import Engine
from tests.chaos.conftest import WorkerProcesses
from tests.chaos.queue_app import (
    LEASE_SECONDS,
    MARKS_ENV,
    QUEUE,
    STEP_SECONDS_ENV,
    WORKFLOWS,
    limited,
    read_marks,
)

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]

LIMIT = 2


class QueueWorkers(WorkerProcesses):
    """Spawns ``python -m tests.chaos.queue_app`` processes (same bookkeeping and kill)."""

    def spawn_queue_worker(
        self, database_url: str, marks: Path, *, step_seconds: float
    ) -> subprocess.Popen[bytes]:
        return self.spawn_module(
            "tests.chaos.queue_app",
            database_url,
            {MARKS_ENV: str(marks), STEP_SECONDS_ENV: str(step_seconds)},
        )

    async def wait_ready(self, timeout: float = 20.0) -> None:
        """Until every spawned worker has entered its engine (it prints ``ready``)."""
        with anyio.fail_after(timeout):
            while True:
                ready = 0
                for proc, log in self.started:
                    assert proc.poll() is None, f"worker {proc.pid} exited:\n{self.output()}"
                    if log.exists() and " ready (pid " in log.read_text(errors="replace"):
                        ready += 1
                if ready == len(self.started):
                    return
                await anyio.sleep(0.05)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[QueueWorkers]:
    # Named ``workers`` so the chaos conftest attaches the workers' output to a failure.
    procs = QueueWorkers(tmp_path)
    try:
        yield procs
    finally:
        procs.kill_all()


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end at t closes before a start at t)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = most = 0
    for _, delta in events:
        open_now += delta
        most = max(most, open_now)
    return most


def test_max_overlap_helper() -> None:
    assert max_overlap([]) == 0
    assert max_overlap([(0, 1), (1, 2), (2, 3)]) == 1
    assert max_overlap([(0, 2), (1, 3), (1.5, 1.6)]) == 3
    assert max_overlap([(0, 10), (1, 2), (3, 4), (5, 6)]) == 2


async def test_concurrency_two_never_runs_three_at_once_across_three_processes(
    database_url: str, workers: QueueWorkers, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.log"
    runs = 12
    async with Engine(database_url, worker=False, workflows=WORKFLOWS) as client:
        await client.queues.configure(QUEUE, concurrency=LIMIT)
        for _ in range(3):
            workers.spawn_queue_worker(database_url, marks, step_seconds=0.2)
        await workers.wait_ready()

        handles = [await client.start(limited, f"run-{n}") for n in range(runs)]
        with anyio.fail_after(30):
            results = [await h.result(timeout=30) for h in handles]
    assert results == [f"worked run-{n}" for n in range(runs)]

    recorded = read_marks(marks)
    starts = {label: (at, pid) for event, label, at, pid in recorded if event == "start"}
    ends = {label: at for event, label, at, _ in recorded if event == "end"}
    assert Counter(event for event, *_ in recorded) == {"start": runs, "end": runs}
    intervals = [(starts[label][0], ends[label]) for label in starts]
    overlap = max_overlap(intervals)
    assert overlap <= LIMIT, f"{overlap} runs of a concurrency={LIMIT} queue ran at once"
    # The limit was reached (the test is not vacuous), and the work was spread out.
    assert overlap == LIMIT
    pids = Counter(pid for _, pid in starts.values())
    assert len(pids) > 1, f"one process ran every run: {pids}"
    # Twelve runs of 0.2 s, two at a time: at least six rounds.
    span = max(ends.values()) - min(at for at, _ in starts.values())
    assert span >= (runs / LIMIT) * 0.2 * 0.95


async def test_concurrency_limit_holds_while_a_killed_workers_lease_is_live(
    database_url: str, workers: QueueWorkers, tmp_path: Path
) -> None:
    """A SIGKILLed worker's run keeps its slot until its lease expires, then another worker
    takes it over: at no point do more than two step bodies execute, and every run ends."""
    marks = tmp_path / "marks.log"
    runs = 8
    async with Engine(database_url, worker=False, workflows=WORKFLOWS) as client:
        await client.queues.configure(QUEUE, concurrency=LIMIT)
        procs = [
            workers.spawn_queue_worker(database_url, marks, step_seconds=0.3) for _ in range(3)
        ]
        await workers.wait_ready()
        handles = [await client.start(limited, f"run-{n}") for n in range(runs)]

        with anyio.fail_after(10):
            while True:
                recorded = read_marks(marks)
                if recorded:
                    break
                await anyio.sleep(0.01)
        victim_pid = recorded[0][3]  # the process running the first step to start
        victim = next(p for p in procs if p.pid == victim_pid)
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.time()
        victim.wait(timeout=10)

        with anyio.fail_after(LEASE_SECONDS + 20):
            results = [await h.result(timeout=LEASE_SECONDS + 20) for h in handles]
    assert results == [f"worked run-{n}" for n in range(runs)]

    recorded = read_marks(marks)
    cut_short = recorded[0][1]
    restarts = [pid for event, label, _, pid in recorded if event == "start" and label == cut_short]
    assert restarts[0] == victim_pid
    assert len(restarts) == 2, f"{cut_short} was not taken over once: started by {restarts}"
    ended = Counter(label for event, label, _, _ in recorded if event == "end")
    assert ended == Counter({f"run-{n}": 1 for n in range(runs)})
    # Pair each start with its end by (label, pid); a start of the killed process without
    # an end was cut short by the kill.
    intervals = []
    for event, label, at, pid in recorded:
        if event != "start":
            continue
        end = next(
            (t for e, lbl, t, p in recorded if e == "end" and lbl == label and p == pid),
            None,
        )
        if end is None:
            assert pid == victim_pid, f"{label} started in live worker {pid} and never ended"
            end = killed_at
        intervals.append((at, end))
    overlap = max_overlap(intervals)
    assert overlap <= LIMIT, f"{overlap} runs of a concurrency={LIMIT} queue ran at once"
    survivors = {pid for event, _, _, pid in recorded if event == "end"} - {victim_pid}
    assert survivors, "no surviving worker finished a run"
