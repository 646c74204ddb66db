"""The primary dies under load and its synchronous standby is promoted: workers and clients
on a multi-host URL find the new primary by themselves, every run completes, and no
acknowledged step record is lost (invariants 1, 3 and 8).

Two real servers of this machine (``replicated_postgres``): a primary, and a hot standby
that every commit waits for (``synchronous_standby_names = '*'``). A worker process serves
``chaos.ten_steps`` runs through ``postgresql://primary,standby/...?target_session_attrs=
read-write``. Once a third of the records are in, the primary and all its processes are
SIGKILLed and ``pg_ctl promote`` turns the standby into the primary. The audit then reads
the promoted server: every run completed with its ten records, no body started after its
record committed, and no tick ran again once a later tick of its run had started (which
would mean an acknowledged record was lost). The printed ``resumed`` figure is the time
from the kill to the first step record committed on the promoted server.

The second test is the honest counterpart: with asynchronous replication, records the
primary acknowledged but the standby never received are gone after the failover. A run
resumed from the older records runs those steps again; an execution that outlived the
failover in memory finishes without them (its history has holes). Every run completes.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import asyncpg
import pytest

from tests.chaos.conftest import WorkerProcesses
from tests.chaos.load import audit, client, start_runs, wait_finished
from tests.replicated_postgres import ReplicatedPostgres

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]

RUNS = 120
RUNS_AFTER = 20
TICK_SECONDS = 0.01
KILL_AFTER_RECORDS = RUNS * 10 // 3

_FIRST_RECORD_AFTER = """
SELECT extract(epoch FROM min(finished_at))::float8 FROM durable.steps
WHERE finished_at > to_timestamp($1) AND run_id = ANY($2)
"""


def _alive(proc: subprocess.Popen[bytes]) -> None:
    assert proc.poll() is None, f"worker {proc.pid} exited with {proc.returncode}"


async def _count(url: str, sql: str = "SELECT count(*) FROM durable.steps", *args: object) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(sql, *args)
        return count
    finally:
        await conn.close()


async def _records_reach(url: str, count: int, worker: subprocess.Popen[bytes]) -> None:
    with anyio.fail_after(60):
        while await _count(url) < count:
            _alive(worker)
            await anyio.sleep(0.05)


async def _serving(workers: WorkerProcesses, url: str, marks: Path) -> subprocess.Popen[bytes]:
    worker = workers.spawn(url, marks, tick_seconds=TICK_SECONDS)
    with anyio.fail_after(60):
        while not workers.ready(worker):
            _alive(worker)
            await anyio.sleep(0.1)
    return worker


async def test_failover_to_a_synchronous_standby_loses_no_acknowledged_record(
    replicated_postgres: Callable[..., ReplicatedPostgres],
    workers: WorkerProcesses,
    tmp_path: Path,
) -> None:
    cluster = replicated_postgres(synchronous=True)
    url = cluster.multi_host_url()
    marks = tmp_path / "marks.log"
    worker = await _serving(workers, url, marks)

    async with client(url) as engine:
        started = await start_runs(engine, "before", RUNS)
        await _records_reach(cluster.primary.url(), KILL_AFTER_RECORDS, worker)
        cluster.kill_primary()
        killed_at = time.time()  # after: no record can begin on the old primary from now on
        await anyio.to_thread.run_sync(cluster.promote)
        promoted_at = time.time()
        # The same client, whose every connection went with the old primary, starts more.
        after = await start_runs(engine, "after", RUNS_AFTER)

    db = await asyncpg.connect(cluster.standby.url())
    try:
        with anyio.fail_after(60):
            while (
                resumed_at := await db.fetchval(_FIRST_RECORD_AFTER, killed_at, list(started))
            ) is None:
                _alive(worker)
                await anyio.sleep(0.02)
        everything = started | after
        await wait_finished(db, list(everything), timeout=60, alive=lambda: _alive(worker))
        finished_at = time.time()
        result = await audit(db, everything, marks)
    finally:
        await db.close()

    print(
        f"\nfailover: promote={promoted_at - killed_at:.2f}s resumed={resumed_at - killed_at:.2f}s "
        f"all_done={finished_at - killed_at:.2f}s {result.summary()}"
    )
    _alive(worker)
    assert result.statuses == {"completed": RUNS + RUNS_AFTER}, result.summary()
    assert result.bad_records == [], result.bad_records[:10]
    assert result.after_commit == [], result.after_commit[:10]
    assert result.lost_acks == [], result.lost_acks[:10]
    # Every error the failover caused was taken for what it is: infrastructure.
    assert "Traceback" not in workers.output()


async def test_failover_to_an_asynchronous_standby_runs_unreplicated_steps_again(
    replicated_postgres: Callable[..., ReplicatedPostgres],
    workers: WorkerProcesses,
    tmp_path: Path,
) -> None:
    cluster = replicated_postgres(synchronous=False)
    url = cluster.multi_host_url()
    marks = tmp_path / "marks.log"
    worker = await _serving(workers, url, marks)
    runs = RUNS // 3
    async with client(url) as engine:
        started = await start_runs(engine, "async", runs)
    with anyio.fail_after(60):  # the starts themselves reached the standby
        in_standby = "SELECT count(*) FROM durable.runs WHERE id = ANY($1)"
        while await _count(cluster.standby.url(), in_standby, list(started)) < runs:
            _alive(worker)
            await anyio.sleep(0.02)
    cluster.stall_replication()
    stalled_at = await _count(cluster.primary.url())
    # Acknowledged to the worker, never received by the standby.
    await _records_reach(cluster.primary.url(), stalled_at + runs, worker)
    cluster.kill_primary()
    await anyio.to_thread.run_sync(cluster.promote)

    db = await asyncpg.connect(cluster.standby.url())
    try:
        await wait_finished(db, list(started), timeout=60, alive=lambda: _alive(worker))
        result = await audit(db, started, marks)
    finally:
        await db.close()

    print(f"\nasynchronous failover: {result.summary()}")
    _alive(worker)
    assert result.statuses == {"completed": runs}, result.summary()
    assert result.after_commit == [], result.after_commit[:10]
    # What was lost shows one of two ways: a run resumed from the standby's older records
    # runs those steps again (lost_acks); an execution that outlived the failover in
    # memory finishes from results the standby never had, leaving holes in its history.
    assert result.lost_acks or result.bad_records, "nothing acknowledged was lost"
    assert "Traceback" not in workers.output()
