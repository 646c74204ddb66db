"""One LISTEN connection per process and database: engines of one process share it, each
is still woken by it, and the last one to close closes it."""

from __future__ import annotations

import anyio
import asyncpg
import pytest

from durable import Engine, step, workflow
from durable._store.listener_share import shared_listeners
from tests.acceptance.conftest import EngineFactory
from tests.acceptance.support import wait_until

pytestmark = pytest.mark.anyio

# A poll this long means only a notification can make a run finish within the test.
NO_POLL = {"poll_interval": 600.0}

_LISTENING = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()
"""


@step(name="share.echo")
async def echo_step(value: str) -> str:
    return value


@workflow(name="share.echo_flow")
async def echo_flow(value: str) -> str:
    return await echo_step(value)


@workflow(name="share.other_flow")
async def other_flow(value: str) -> str:
    return value.upper()


async def _listening(db: asyncpg.Connection) -> int:
    return len(await _listening_pids(db))


async def _listening_pids(db: asyncpg.Connection) -> list[int]:
    return [row["pid"] for row in await db.fetch(_LISTENING)]


async def test_two_engines_share_one_listen_connection(
    make_engine: EngineFactory, db: asyncpg.Connection
) -> None:
    async with make_engine(echo_flow, **NO_POLL) as first:
        assert await _listening(db) == 1
        async with make_engine(other_flow, **NO_POLL) as second:
            assert second.runtime.listener is first.runtime.listener
            assert await _listening(db) == 1
            # Both workers are woken by the one connection (no poll would come in time).
            with anyio.fail_after(30):
                assert await (await first.start(echo_flow, "a")).result() == "a"
                assert await (await second.start(other_flow, "b")).result() == "B"
        # The first engine keeps listening after the second closed, and is still woken.
        assert first.runtime.listener.connected
        assert await _listening(db) == 1
        with anyio.fail_after(30):
            assert await (await first.start(echo_flow, "c")).result() == "c"
    assert shared_listeners() == 0
    with anyio.fail_after(10):  # the server ends the backend once the client closed it
        while True:
            if not await _listening(db):
                break
            await anyio.sleep(0.02)


async def _hold(engine: Engine, entered: anyio.Event, leave: anyio.Event) -> None:
    async with engine:
        entered.set()
        await leave.wait()


async def test_the_listener_outlives_the_engine_that_opened_it(
    make_engine: EngineFactory, db: asyncpg.Connection
) -> None:
    first, second = make_engine(echo_flow, **NO_POLL), make_engine(other_flow, **NO_POLL)
    first_in, first_out, second_in, second_out = (anyio.Event() for _ in range(4))
    async with anyio.create_task_group() as tg:  # each engine in its own task
        tg.start_soon(_hold, first, first_in, first_out)
        await first_in.wait()
        tg.start_soon(_hold, second, second_in, second_out)
        await second_in.wait()
        listener = second.runtime.listener
        first_out.set()  # the engine that opened the connection closes first
        await wait_until(lambda: first._listener is None, 30, "the first engine to close")
        assert listener.connected
        [old_pid] = await _listening_pids(db)
        # The remaining engine keeps the connection up: it reconnects after a termination.
        await db.execute("SELECT pg_terminate_backend($1)", old_pid)
        with anyio.fail_after(30):
            while True:
                if listener.connected and await _listening_pids(db) not in ([], [old_pid]):
                    break
                await anyio.sleep(0.02)
        assert len(await _listening_pids(db)) == 1
        # The remaining engine's worker still hears wakes through the shared connection.
        with anyio.fail_after(30):
            assert await (await second.start(other_flow, "d")).result() == "D"
        second_out.set()
    assert not listener.connected
    assert shared_listeners() == 0
