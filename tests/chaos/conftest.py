"""Worker subprocesses for chaos tests: started from the repo root, output kept in files and
attached to the report of a failing test, killed (by their own pid) when the test ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.worker_app import CONCURRENCY_ENV, MARKS_ENV, SLOW_ENV, TICK_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]


class WorkerProcesses:
    """Spawns ``python -m tests.chaos.worker_app`` processes and remembers their output."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def spawn(
        self,
        database_url: str,
        marks: Path,
        *,
        slow_seconds: float = 0,
        tick_seconds: float = 0,
        concurrency: int = 16,
    ) -> subprocess.Popen[bytes]:
        return self.spawn_module(
            "tests.chaos.worker_app",
            database_url,
            {
                MARKS_ENV: str(marks),
                SLOW_ENV: str(slow_seconds),
                TICK_ENV: str(tick_seconds),
                CONCURRENCY_ENV: str(concurrency),
            },
        )

    def ready(self, proc: subprocess.Popen[bytes]) -> bool:
        """True once ``proc`` printed that its engine is serving."""
        for started, log in self.started:
            if started is proc:
                return log.exists() and b" ready (pid " in log.read_bytes()
        return False

    def spawn_module(
        self, module: str, database_url: str, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """Start ``python -m module database_url`` with ``env``, its output to a log."""
        return self.spawn_argv(["-m", module, database_url], env)

    def spawn_argv(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start ``python *argv`` with ``env``, its output to a log."""
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        name = argv[1].rsplit(".", 1)[-1] if argv[0] == "-m" else "python"
        log = self.log_dir / f"{name}-{len(self.started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, *argv],
                cwd=REPO_ROOT,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.started.append((proc, log))
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL one worker we started, and reap it."""
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def output(self) -> str:
        parts = []
        for proc, log in self.started:
            state = "running" if proc.poll() is None else f"exit code {proc.returncode}"
            text = log.read_text(errors="replace") if log.exists() else ""
            parts.append(f"=== worker pid {proc.pid} ({state}) ===\n{text}")
        return "\n".join(parts)

    def kill_all(self) -> None:
        for proc, _ in self.started:
            self.kill(proc)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[WorkerProcesses]:
    procs = WorkerProcesses(tmp_path)
    try:
        yield procs
    finally:
        procs.kill_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    procs = getattr(item, "funcargs", {}).get("workers")
    if report.failed and isinstance(procs, WorkerProcesses) and procs.started:
        report.sections.append(("Captured stdout of worker subprocesses", procs.output()))
    return report
