"""A connection that lands on a read-only server (a hot standby reached through a multi-host
URL, a primary not yet promoted, ``default_transaction_read_only``) is infrastructure: the
write it refuses (SQLSTATE 25006) never fails a run, and the connection is discarded, so the
worker carries on once a writable server answers (invariant 8)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from durable import Engine, RunStatus, step, workflow
from durable._store.record_writer import StepWrite
from durable._store.store import Store

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]

BODIES: list[int] = []
GATE: dict[str, asyncio.Event] = {}


@step
async def gated(i: int) -> int:
    BODIES.append(i)
    if i == 1 and "open" in GATE:
        GATE["reached"].set()
        await GATE["open"].wait()  # the server turns read-only here
    return i


@workflow(name="chaos.read_only_server")
async def three_gated() -> list[int]:
    return [await gated(i) for i in range(3)]


async def _read_only(server_dsn: str, database: str, on: bool, *, terminate: bool) -> None:
    """Make the connections to ``database`` made from now on read-only (or writable); with
    ``terminate``, end its open connections too, so the engine must make new ones."""
    setting = (
        "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
    )
    conn = await asyncpg.connect(server_dsn)  # the maintenance database: never read-only here
    try:
        await conn.execute(f'ALTER DATABASE "{database}" {setting}')
        if terminate:
            # Wait for each backend to be gone (PostgreSQL 14+): a write that met one still
            # shutting down would fail on the dead connection, not on the read-only server,
            # and the run's claims after its lease (writes too) would never reach the step.
            await conn.execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = $1",
                database,
            )
    finally:
        await conn.close()


async def test_a_read_only_server_does_not_fail_the_run(
    server_dsn: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    BODIES.clear()
    GATE.clear()
    GATE["reached"], GATE["open"] = asyncio.Event(), asyncio.Event()
    refused: list[BaseException] = []
    refusal = asyncio.Event()
    real = Store.record_step

    async def watched(self: Store, record: StepWrite) -> bool:
        try:
            return await real(self, record)
        except Exception as exc:
            refused.append(exc)
            if isinstance(exc, asyncpg.exceptions.ReadOnlySQLTransactionError):
                refusal.set()
            raise

    monkeypatch.setattr(Store, "record_step", watched)
    database = database_url.rpartition("/")[2].partition("?")[0]
    async with Engine(
        database_url, workflows=[three_gated], lease_seconds=1.0, heartbeat_seconds=0.3,
        poll_interval=0.2,
    ) as engine:  # fmt: skip
        handle = await engine.start(three_gated)
        await asyncio.wait_for(GATE["reached"].wait(), 10)
        # Every connection made from now on is read-only, like one to a hot standby.
        await _read_only(server_dsn, database, True, terminate=True)
        GATE["open"].set()
        await asyncio.wait_for(refusal.wait(), 10)  # step 1's record meets the read-only server
        assert await handle.status() in (RunStatus.RUNNING, RunStatus.PENDING)
        # The server is writable again; connections already made stay read-only until
        # the pool discards them.
        await _read_only(server_dsn, database, False, terminate=False)
        assert await handle.result(timeout=30) == [0, 1, 2]
        detail = await engine.get_run(handle.run_id)

    # A write may first meet a connection terminated above (the run resumes after its
    # lease); every refused write cost one more run of step 1's body, nothing else.
    assert any(isinstance(e, asyncpg.exceptions.ReadOnlySQLTransactionError) for e in refused)
    assert detail.status == RunStatus.COMPLETED
    assert detail.error is None
    assert all(s.status == "completed" and s.error is None for s in detail.steps)
    assert BODIES.count(0) == 1
    assert BODIES.count(2) == 1
    assert BODIES.count(1) == len(refused) + 1
