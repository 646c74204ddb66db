"""``durable.testing.Environment``: a fresh database and a clock the test moves, so days of
sleeps and waits run without waiting for them."""

from __future__ import annotations

import time
from datetime import timedelta

import asyncpg
import pytest

import durable
from durable import RunStatus, SignalKind, SignalTimeout, step, workflow
from durable.testing import Environment, shift_clock
from tests.acceptance.support import CALLS

pytestmark = pytest.mark.anyio

DAY = 86400.0


@workflow
async def week_then_approval(order: str) -> str:
    await durable.sleep("7d")
    approved = await durable.wait_for_signal("approve", type=bool)
    return f"{order}: {'approved' if approved else 'rejected'}"


@workflow
async def approval_within_two_days() -> str:
    try:
        return await durable.wait_for_signal("approve", timeout="2d")
    except SignalTimeout:
        return "expired"


@workflow
async def long_sleeps() -> float:
    started = durable.now()
    await durable.sleep("1h")
    await durable.sleep_until(started + timedelta(days=30))
    await durable.sleep("2w")
    return (durable.now() - started).total_seconds()


@step(retries=1, initial_interval=3600, max_interval=3600)
async def fails_once_then_waits_an_hour() -> str:
    CALLS["fails_once"] += 1
    if CALLS["fails_once"] == 1:
        raise ConnectionError("try again in an hour")
    return "ok"


@workflow
async def retries_after_an_hour() -> str:
    return await fails_once_then_waits_an_hour()


@workflow
async def hello(name: str) -> str:
    return f"hello {name}"


WORKFLOWS = [
    week_then_approval,
    approval_within_two_days,
    long_sleeps,
    retries_after_an_hour,
    hello,
]


@pytest.mark.parametrize("worker", [True, "manual"])
async def test_a_week_of_sleep_and_a_signal_run_without_waiting_a_week(
    server_dsn: str, worker: bool | str
) -> None:
    async with Environment(server_dsn, workflows=WORKFLOWS, worker=worker) as env:
        real_start = time.time()
        handle = await env.start(week_then_approval, "order-1")
        await env.run_until_idle()  # skips the 7-day sleep; stops at the signal wait
        assert await handle.status() == RunStatus.WAITING
        delivery = await handle.signal("approve", True)
        assert delivery.kind == SignalKind.DELIVERED
        await env.run_until_idle()
        assert await handle.result(timeout=1) == "order-1: approved"
        assert await env.now() - real_start >= 7 * DAY


async def test_advance_fires_a_wait_timeout(server_dsn: str) -> None:
    async with Environment(server_dsn, workflows=WORKFLOWS) as env:
        handle = await env.start(approval_within_two_days)
        await env.run_until_idle()
        assert await handle.status() == RunStatus.WAITING  # run_until_idle never fires timeouts

        await env.advance("1d")
        assert await handle.status() == RunStatus.WAITING
        await env.advance("3d")
        assert await handle.status() == RunStatus.COMPLETED
        assert await handle.result(timeout=1) == "expired"


async def test_a_signal_before_the_deadline_wins(server_dsn: str) -> None:
    async with Environment(server_dsn, workflows=WORKFLOWS) as env:
        handle = await env.start(approval_within_two_days)
        await env.advance("1d")
        assert (await handle.signal("approve", "yes")).kind == SignalKind.DELIVERED
        await env.run_until_idle()
        assert await handle.result(timeout=1) == "yes"


@pytest.mark.parametrize("worker", [True, "manual"])
async def test_run_until_idle_skips_sleeps_backoffs_and_delayed_starts(
    server_dsn: str, worker: bool | str
) -> None:
    async with Environment(server_dsn, workflows=WORKFLOWS, worker=worker) as env:
        real_start = time.time()
        sleeper = await env.start(long_sleeps)
        retrier = await env.start(retries_after_an_hour)
        delayed = await env.start(hello, "later", delay="1d")

        await env.run_until_idle()

        assert await sleeper.result(timeout=1) >= 30 * DAY + 14 * DAY
        assert await retrier.result(timeout=1) == "ok"
        assert CALLS["fails_once"] == 2
        assert await delayed.result(timeout=1) == "hello later"
        assert await env.now() - real_start >= 44 * DAY


async def test_run_until_idle_returns_at_once_with_nothing_to_do(server_dsn: str) -> None:
    async with Environment(server_dsn, workflows=WORKFLOWS) as env:
        await env.run_until_idle()
        assert await shift_clock(env.engine, 0) == 0.0  # no timer: the clock did not jump


async def test_the_environment_uses_a_fresh_database_and_drops_it(server_dsn: str) -> None:
    env = Environment(server_dsn, workflows=WORKFLOWS)
    with pytest.raises(RuntimeError, match="not entered"):
        _ = env.engine
    async with env:
        assert (await env.engine.list_runs()).items == []
        handle = await env.engine.start(hello, "ada")
        assert await handle.result(timeout=5) == "hello ada"
        own = await asyncpg.connect(env.database_url)
        try:
            database = await own.fetchval("SELECT current_database()")
        finally:
            await own.close()
    conn = await asyncpg.connect(server_dsn)
    try:
        exists = await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = $1", database
        )
    finally:
        await conn.close()
    assert exists == 0
