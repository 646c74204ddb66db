"""The LISTEN connection is killed server-side; the engine reconnects it and runs started
afterwards are picked up and reported on NOTIFY, not on the fallback poll."""

from __future__ import annotations

import time

import anyio
import asyncpg
import pytest

from durable import Engine
from tests.chaos.worker_app import echo_flow

pytestmark = [pytest.mark.anyio, pytest.mark.chaos]

# Long enough that only a notification can make a run complete promptly.
POLL_INTERVAL = 30.0
PROMPT_SECONDS = 2.0

_LISTENERS = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()
"""


async def _listener_pids(db: asyncpg.Connection) -> list[int]:
    return [r["pid"] for r in await db.fetch(_LISTENERS)]


async def _run_promptly(engine: Engine, value: str) -> float:
    began = time.monotonic()
    handle = await engine.start(echo_flow, value)
    assert await handle.result(timeout=PROMPT_SECONDS + 3) == value
    return time.monotonic() - began


async def test_terminated_listener_reconnects(database_url: str, db: asyncpg.Connection) -> None:
    async with Engine(
        database_url,
        workflows=[echo_flow],
        lease_seconds=2,
        heartbeat_seconds=0.5,
        poll_interval=POLL_INTERVAL,
    ) as engine:
        listener = engine.runtime.listener
        assert listener.connected
        # Sanity: with a 30 s poll, a run completes promptly only through NOTIFY.
        assert await _run_promptly(engine, "before") < PROMPT_SECONDS

        [old_pid] = await _listener_pids(db)
        assert await db.fetchval("SELECT pg_terminate_backend($1)", old_pid)

        with anyio.fail_after(5):
            while True:
                pids = await _listener_pids(db)
                if listener.connected and pids and old_pid not in pids:
                    break
                await anyio.sleep(0.02)
        assert len(pids) == 1, f"one listener connection per engine, found {pids}"

        took = await _run_promptly(engine, "after")
        assert took < PROMPT_SECONDS, f"a run after the reconnect took {took:.1f}s"
