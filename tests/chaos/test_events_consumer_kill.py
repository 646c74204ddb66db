"""A consumer of ``engine.events`` SIGKILLed mid-stream, with the worker SIGKILLed and
replaced meanwhile, resumes from the cursor of the last event it handled: its two lives
together handled each committed event exactly once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import anyio
import asyncpg
import pytest

from durable import Engine
from tests.chaos.conftest import WorkerProcesses
from tests.chaos.events_consumer import OUT_ENV, SINCE_ENV
from tests.chaos.worker_app import WORKFLOWS, echo_flow

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]

RUNS = 15


def handled(path: Path) -> list[list[str]]:
    """The complete lines (a line cut by the kill was not handled)."""
    if not path.exists():
        return []
    text = path.read_text("ascii")
    return [line.split() for line in text.splitlines(keepends=True) if line.endswith("\n")]


def resume_point(path: Path) -> str:
    """Drop a cut line and return the cursor of the last handled event."""
    lines = handled(path)
    path.write_text("".join(" ".join(line) + "\n" for line in lines), "ascii")
    return lines[-1][0]


async def wait_for_lines(path: Path, count: int) -> None:
    while len(handled(path)) < count:  # noqa: ASYNC110 (a file another process writes)
        await anyio.sleep(0.02)


async def test_a_killed_consumer_resumes_from_its_cursor_exactly_once(
    database_url: str, db: asyncpg.Connection, workers: WorkerProcesses, tmp_path: Path
) -> None:
    out = tmp_path / "events.log"
    marks = tmp_path / "marks.log"
    async with Engine(database_url, worker=False, workflows=WORKFLOWS, poll_interval=0.2) as client:
        since = await client.event_cursor()
        env = {OUT_ENV: str(out), SINCE_ENV: since}
        consumer = workers.spawn_module("tests.chaos.events_consumer", database_url, env)
        worker = workers.spawn(database_url, marks)
        first = [await client.start(echo_flow, f"a{i}") for i in range(RUNS)]
        await wait_for_lines(out, 10)
        workers.kill(consumer)
        workers.kill(worker)

        second = [await client.start(echo_flow, f"b{i}") for i in range(RUNS)]
        workers.spawn(database_url, marks)
        for handle in first + second:
            await handle.result(timeout=120)
        env = {OUT_ENV: str(out), SINCE_ENV: resume_point(out)}
        workers.spawn_module("tests.chaos.events_consumer", database_url, env)
        await wait_for_lines(out, 3 * 2 * RUNS)

    lines = handled(out)
    committed = await db.fetch(
        "SELECT xid::text || '.' || seq::text AS cursor, run_id::text AS run_id, kind "
        "FROM durable.event_log WHERE workflow_name = 'chaos.echo_flow' ORDER BY xid, seq"
    )
    assert [tuple(line) for line in lines] == [tuple(r) for r in committed]
    assert len(lines) == 3 * 2 * RUNS
    per_run = Counter(run_id for _, run_id, _ in lines)
    assert set(per_run.values()) == {3}
    assert {r for _, r, _ in lines} == {str(h.run_id) for h in first + second}
