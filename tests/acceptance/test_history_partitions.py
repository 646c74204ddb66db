"""The partitioned history layout on a real engine: partitions created ahead by the
workers, retention that drops a partition whole, a running run in an old partition that
survives it, and runs, replays and exports that work the same across the layout.

Run ids are UUIDv7; a test places runs in a period of the past by starting them with an
id of that time (``new_run_id(at=...)``), after creating that period's partition.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import anyio
import asyncpg
import pytest

import durable
from durable import step, workflow
from durable._foundation.run_ids import new_run_id
from durable._store.partition_statements import partition_history
from durable.testing import Replayer
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio

HOUR = 3600.0
DAY = 86400.0


@step(name="tests.hp.double")
async def double(value: int) -> int:
    return 2 * value


@workflow(name="tests.hp.child")
async def child(value: int) -> int:
    return await double(value)


@workflow(name="tests.hp.total")
async def total(value: int) -> int:
    return await double(value) + await child(value)


@workflow(name="tests.hp.approval")
async def approval() -> bool:
    approved: bool = await durable.wait_for_signal("approve", type=bool)
    return approved


WORKFLOWS = [total, child, approval]


@pytest.fixture
async def partitioned(database_url: str) -> str:
    """This test's database, switched to the partitioned layout (1 h periods, 2 ahead)."""
    conn = await asyncpg.connect(database_url)
    try:
        assert await partition_history(conn, HOUR, 2) is True
    finally:
        await conn.close()
    return database_url


async def _fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def _partitions(url: str) -> list[str]:
    rows = await _fetch(url, "SELECT name FROM durable.history_partitions()")
    return [r["name"] for r in rows]


async def _partition_of(url: str, at: float) -> str:
    """Create the partition of the period holding ``at`` (epoch seconds); its name."""
    await _fetch(
        url,
        "SELECT durable.ensure_history_partitions(to_timestamp($1), to_timestamp($1 + 1))",
        at,
    )
    rows = await _fetch(
        url,
        "SELECT name FROM durable.history_partitions() WHERE lo <= $1 AND hi > $1",
        new_run_id(at=at),
    )
    return str(rows[0]["name"])


async def _steps_in(url: str, run_id: Any) -> set[str]:
    rows = await _fetch(
        url, "SELECT DISTINCT tableoid::regclass::text AS t FROM durable.steps WHERE run_id = $1",
        run_id,
    )  # fmt: skip
    return {r["t"] for r in rows}


async def test_a_second_switch_changes_nothing_and_runs_go_to_their_period(
    partitioned: str, make_engine: EngineFactory
) -> None:
    conn = await asyncpg.connect(partitioned)
    try:
        assert await partition_history(conn, DAY, 9) is False
        assert await conn.fetchval("SELECT period_seconds FROM durable.partitioning") == HOUR
    finally:
        await conn.close()
    async with make_engine(*WORKFLOWS) as engine:
        handle = await engine.start(total, 1)
        assert await handle.result(timeout=10) == 4
    assert handle.run_id.version == 7
    (current,) = await _fetch(
        partitioned, "SELECT name FROM durable.history_partitions() WHERE lo <= $1 AND hi > $1",
        handle.run_id,
    )  # fmt: skip
    assert await _steps_in(partitioned, handle.run_id) == {f"durable.{current['name']}"}


async def test_switching_a_database_with_runs_is_refused_and_changes_nothing(
    database_url: str, make_engine: EngineFactory
) -> None:
    async with make_engine(*WORKFLOWS) as engine:
        await (await engine.start(total, 1)).result(timeout=10)
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.ObjectNotInPrerequisiteStateError, match="empty database"):
            await partition_history(conn, HOUR, 2)
        assert await conn.fetchval("SELECT count(*) FROM durable.partitioning") == 0
        kind = await conn.fetchval(
            "SELECT relkind::text FROM pg_class WHERE oid = 'durable.steps'::regclass"
        )
        assert kind == "r"  # still one plain table
        assert await conn.fetchval("SELECT count(*) FROM durable.steps") == 3
    finally:
        await conn.close()


async def test_workers_create_the_partitions_ahead(
    partitioned: str, make_engine: EngineFactory
) -> None:
    before = await _partitions(partitioned)
    assert len(before) == 4  # the last period, this one and two ahead
    await _fetch(partitioned, "UPDATE durable.partitioning SET ahead = 6")
    async with make_engine(*WORKFLOWS):
        wanted = time.time() + 6 * HOUR - 1

        async def far_enough() -> bool:
            rows = await _fetch(
                partitioned, "SELECT max(ends_at) AS e FROM durable.history_partitions()"
            )
            return rows[0]["e"].timestamp() >= wanted

        await _wait_for(far_enough, "partitions six periods ahead")
    after = await _partitions(partitioned)
    assert set(before) < set(after)
    assert len(after) == 8


async def _wait_for(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await anyio.sleep(0.02)


async def test_retention_drops_a_whole_partition_and_keeps_one_with_a_running_run(
    partitioned: str, make_engine: EngineFactory
) -> None:
    old_at, busy_at = time.time() - 3 * DAY, time.time() - 3 * DAY + 2 * HOUR
    old_part, busy_part = (
        await _partition_of(partitioned, old_at),
        await _partition_of(partitioned, busy_at),
    )
    async with make_engine(*WORKFLOWS) as engine:
        finished = []
        for i in range(3):
            handle = await engine.start(total, i, run_id=new_run_id(at=old_at + i))
            assert await handle.result(timeout=10) == 4 * i
            finished.append(handle.run_id)
        (kid,) = (await engine.get_run(finished[0])).children
        assert await _steps_in(partitioned, finished[0]) == {f"durable.{old_part}"}
        assert await _steps_in(partitioned, kid) == {f"durable.{old_part}"}  # with its parent
        # Reads, exports and replays of a run whose steps live in a partition.
        detail = await engine.get_run(finished[1])
        assert [s.cursor_key for s in detail.steps] == [
            "step:tests.hp.double#0", "child:tests.hp.child#0",
        ]  # fmt: skip
        report = await Replayer(workflows=WORKFLOWS).replay(await engine.export_run(finished[1]))
        assert report.ok, report.describe()
        assert report.outcome == "same"

        waiting = await engine.start(approval, run_id=new_run_id(at=busy_at))
        await support.wait_for_status(waiting, "waiting")
        neighbour = await engine.start(total, 5, run_id=new_run_id(at=busy_at + 1))
        await neighbour.result(timeout=10)

        await engine.runtime.store.shift_clock(2 * DAY)
        await engine.runtime.sync_clock()
        deleted = await engine.prune("1d")

        assert deleted == 6  # three runs and their children: the old partition, whole
        names = await _partitions(partitioned)
        assert old_part not in names
        assert busy_part in names  # kept: a run in it is still waiting
        rows = await _fetch(partitioned, "SELECT to_regclass($1) AS t", f"durable.{old_part}")
        assert rows[0]["t"] is None  # dropped, not emptied
        for run_id in finished:
            with pytest.raises(durable.RunNotFound):
                await engine.get_run(run_id)
        assert (await engine.get_run(neighbour.run_id)).status == "completed"

        # The survivor runs on: its records go to its own partition.
        await waiting.signal("approve", True)
        assert await waiting.result(timeout=10) is True
        assert await _steps_in(partitioned, waiting.run_id) == {f"durable.{busy_part}"}
        await engine.runtime.store.shift_clock(2 * DAY)
        await engine.runtime.sync_clock()
        assert await engine.prune("1d") == 3  # the survivor, its neighbour and its child
        assert busy_part not in await _partitions(partitioned)
        rows = await _fetch(partitioned, "SELECT count(*) AS n FROM durable.steps")
        assert rows[0]["n"] == 0


async def test_the_row_prune_serves_runs_outside_partitions_and_skips_the_rest(
    partitioned: str, make_engine: EngineFactory
) -> None:
    later_at = time.time() + 10 * HOUR
    later_part = await _partition_of(partitioned, later_at)
    async with make_engine(*WORKFLOWS) as engine:
        random_id = uuid.UUID(int=uuid.uuid4().int | (0xF << 124))  # beyond any v7 time
        outside = await engine.start(total, 2, run_id=random_id)
        assert await outside.result(timeout=10) == 8
        assert await _steps_in(partitioned, random_id) == {"durable.steps_default"}
        inside = await engine.start(total, 3, run_id=new_run_id(at=later_at))
        await inside.result(timeout=10)
        await engine.runtime.store.shift_clock(2 * HOUR)
        await engine.runtime.sync_clock()
        # Both finished before the cutoff; only the one outside every partition goes (with
        # its child), row by row. The other waits for its partition's period to pass.
        assert await engine.prune("1h") == 2
        with pytest.raises(durable.RunNotFound):
            await engine.get_run(random_id)
        assert (await engine.get_run(inside.run_id)).status == "completed"
        assert await _steps_in(partitioned, inside.run_id) == {f"durable.{later_part}"}


async def test_the_migrate_command_switches_an_empty_database_and_checks_its_options(
    database_url: str,
) -> None:
    from tests.acceptance.test_cli import cli

    bad = await cli(database_url, "migrate", "--partitioned", "--partition-period", "10s")
    assert bad.returncode == 2
    assert "at least 1m" in bad.stderr
    one_run = "INSERT INTO durable.runs (id, workflow_name, input) VALUES ($1, 'w', '{}')"
    await _fetch(database_url, one_run, new_run_id())
    refused = await cli(database_url, "migrate", "--partitioned")
    assert refused.returncode == 1
    assert "empty database only" in refused.stderr
    assert await _partitions(database_url) == []  # nothing changed
    await _fetch(database_url, "DELETE FROM durable.runs")
    done = await cli(database_url, "migrate", "--partitioned", "--partition-period", "6h")
    assert done.returncode == 0, done.stderr
    assert "durable.steps is partitioned: one partition per 21600s" in done.stdout
    again = await cli(database_url, "migrate", "--partitioned")
    assert again.returncode == 0, again.stderr
    assert "already partitioned" in again.stdout
    assert len(await _partitions(database_url)) == 5  # the last period, this one, 3 ahead
