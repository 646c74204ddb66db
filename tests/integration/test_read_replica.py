"""``Engine(read_url=...)`` on a real streaming replica: lists, counts, details, exports and
the dashboard read the replica and see a run once the replica has replayed it; writes,
claims and ``handle.result()`` use the primary, so a result never waits on the replica,
however far behind it is. A replica that goes away sends reads to the primary. And a
multi-host URL that names the standby first still writes on the primary."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import asyncpg
import httpx
import pytest

from durable import Engine, step, workflow
from durable._store.connecting import connector
from durable._store.replicas import replica_caught_up
from durable.dashboard import dashboard_app
from tests.replicated_postgres import ReplicatedPostgres, Server

pytestmark = pytest.mark.anyio


@step
async def add_one(n: int) -> int:
    return n + 1


@workflow(name="replica.count_up")
async def count_up(n: int) -> int:
    return await add_one(await add_one(n))


async def _fetchval(server: Server, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(server.url())
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _replayed(cluster: ReplicatedPostgres) -> None:
    """Wait until the standby replayed everything the primary has written so far."""
    written = await _fetchval(cluster.primary, "SELECT pg_current_wal_lsn()")
    with anyio.fail_after(30):
        while True:
            if await _fetchval(cluster.standby, "SELECT pg_last_wal_replay_lsn() >= $1", written):
                return
            await anyio.sleep(0.01)


async def _replay_paused(cluster: ReplicatedPostgres, paused: bool) -> None:
    await _fetchval(cluster.standby, f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()")
    want = "paused" if paused else "not paused"
    with anyio.fail_after(30):
        while True:
            if await _fetchval(cluster.standby, "SELECT pg_get_wal_replay_pause_state()") == want:
                return
            await anyio.sleep(0.01)


async def test_reads_go_to_the_replica_and_results_to_the_primary(
    replicated_postgres: Callable[..., ReplicatedPostgres],
) -> None:
    cluster = replicated_postgres(synchronous=False)
    await _multi_host_url_for_writes_picks_the_primary(cluster)
    async with Engine(
        cluster.primary.url(), read_url=cluster.standby.url(), workflows=[count_up],
        poll_interval=0.2,
    ) as engine:  # fmt: skip
        assert await engine.runtime.reads.pool.fetchval("SELECT pg_is_in_recovery()") is True
        assert await engine.runtime.store.pool.fetchval("SELECT pg_is_in_recovery()") is False
        first = await engine.start(count_up, 1)
        assert await first.result(timeout=30) == 3

        # Once the replica replayed the primary's WAL, every read served there sees the run.
        await _replayed(cluster)
        listed = await engine.list_runs(workflow=count_up)
        assert [(r.run_id, r.status) for r in listed.items] == [(first.run_id, "completed")]
        assert await engine.count_runs(workflow=count_up) == 1
        detail = await engine.get_run(first.run_id)
        assert detail.output == 3
        assert [s.cursor_key for s in detail.steps] == ["step:add_one#0", "step:add_one#1"]
        assert (await engine.export_run(first.run_id)).run_id == first.run_id

        # The replica stops replaying: the primary goes on, and so does result().
        await _replay_paused(cluster, True)
        second = await engine.start(count_up, 10)
        assert await second.result(timeout=30) == 12
        assert await second.status() == "completed"
        # Lists read the replica, which does not have the run yet...
        assert await engine.count_runs(workflow=count_up) == 1
        primary, replica = engine.runtime.store.pool, engine.runtime.reads.pool
        assert not await replica_caught_up(primary, replica, timeout=0.2)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=dashboard_app(engine)), base_url="http://dash"
        ) as http:
            page = (await http.get("/runs")).text
            assert str(first.run_id) in page
            assert str(second.run_id) not in page
            # ...and a run too new for the replica is read on the primary, never "not found".
            assert (await engine.get_run(second.run_id)).output == 12
            assert (await http.get(f"/runs/{second.run_id}")).status_code == 200

            await _replay_paused(cluster, False)
            assert await replica_caught_up(primary, replica, timeout=30)
            assert await engine.count_runs(workflow=count_up) == 2
            assert str(second.run_id) in (await http.get("/runs")).text

        # A replica that is gone: reads go to the primary (with a warning), nothing fails.
        cluster.stop_server(cluster.standby)
        third = await engine.start(count_up, 100)
        assert await third.result(timeout=30) == 102
        assert await engine.count_runs(workflow=count_up) == 3
        assert (await engine.get_run(third.run_id)).output == 102


async def _multi_host_url_for_writes_picks_the_primary(cluster: ReplicatedPostgres) -> None:
    """A multi-host URL that does not say which server it wants, the standby first: the
    engine's connections (which write) go to the primary, a replica's to the first host."""
    hosts = f"127.0.0.1:{cluster.standby.port},127.0.0.1:{cluster.primary.port}"
    url = f"postgresql://postgres@{hosts}/postgres"
    for writes, in_recovery in ((True, False), (False, True)):
        conn = await connector(url, writes=writes)()
        try:
            assert await conn.fetchval("SELECT pg_is_in_recovery()") is in_recovery
        finally:
            await conn.close()
