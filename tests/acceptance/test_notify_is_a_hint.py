"""NOTIFY is a hint (invariant 9): any role that can connect can NOTIFY ``durable_run`` and
``durable_control``.

A forged notification may wake a waiter early, but results, statuses and cancels are read
from rows: a forged ``completed`` never becomes a result and a forged ``cancelled`` never
stops an execution. A real cancel or pause reaches a worker on ``durable_control`` even
while its process hears no ``durable_run`` (see ``test_run_news``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import asyncpg
import pytest

import durable
from durable import Engine, step, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio

RELEASE: dict[str, anyio.Event] = {}


@workflow(name="notify_hint.approval")
async def approval() -> str:
    answer: str = await durable.wait_for_signal("approve")
    return f"approved: {answer}"


@step(name="notify_hint.slow")
async def slow_step() -> str:
    support.CALLS["slow"] += 1
    RELEASE["started"].set()
    await RELEASE["go"].wait()
    return "real"


@workflow(name="notify_hint.blocking")
async def blocking() -> str:
    return await slow_step()


@asynccontextmanager
async def _blocked(
    make_engine: EngineFactory, **options: Any
) -> AsyncIterator[tuple[Engine, durable.RunHandle[str]]]:
    """An engine running ``blocking`` with its step body entered and held until
    ``RELEASE["go"]`` is set."""
    RELEASE["started"], RELEASE["go"] = anyio.Event(), anyio.Event()
    async with make_engine(blocking, **options) as engine:
        handle = await engine.start(blocking)
        await RELEASE["started"].wait()
        yield engine, handle


async def _notify(database_url: str, channel: str, payload: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_notify($1, $2)", channel, payload)
    finally:
        await conn.close()


async def _forge(
    engine: Engine, database_url: str, payload: str, channel: str = "durable_run"
) -> None:
    """Send a forged notification and return once the engine's listener handled it: a
    marker, sent after it on the same channel, is seen by the engine."""
    listener = engine.runtime.listener
    await listener.hear_runs()
    marker = uuid.uuid4()
    seen = anyio.Event()

    def on_news(run_id: uuid.UUID, what: str) -> None:
        if run_id == marker:
            seen.set()

    remove = (listener.on_control if channel == "durable_control" else listener.on_run)(on_news)
    try:
        await _notify(database_url, channel, payload)
        await _notify(database_url, channel, f"{marker} step")
        with anyio.fail_after(30):
            await seen.wait()
    finally:
        remove()


async def test_a_forged_completion_is_not_a_result(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with make_engine(approval) as engine:
        handle = await engine.start(approval)
        await support.wait_for_status(handle, "waiting")
        await _forge(engine, database_url, f"{handle.run_id} failed")
        await _forge(engine, database_url, f'{handle.run_id} completed "spoofed"')
        results: list[str] = []

        async def wait_result() -> None:
            results.append(await handle.result(timeout=30))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_result)
            await handle.signal("approve", "yes")
        assert results == ["approved: yes"]


async def test_a_forged_completion_does_not_fool_a_handle_made_later(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with make_engine(approval) as engine:
        started = await engine.start(approval)
        await support.wait_for_status(started, "waiting")
        handle = engine.handle(started.run_id)
        results: list[Any] = []

        async def wait_result() -> None:
            results.append(await handle.result(timeout=30))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_result)
            await _forge(engine, database_url, f'{handle.run_id} completed "spoofed"')
            await handle.signal("approve", "yes")
        assert results == ["approved: yes"]


async def test_a_forged_cancel_does_not_stop_the_running_step(
    make_engine: EngineFactory, database_url: str
) -> None:
    async with _blocked(make_engine, lease_seconds=3.0) as (engine, handle):
        for channel in ("durable_run", "durable_control"):  # workers heed only the second
            await _forge(engine, database_url, f"{handle.run_id} cancelled", channel)
            await _forge(engine, database_url, f"{handle.run_id} paused", channel)
        RELEASE["go"].set()
        assert await handle.result(timeout=30) == "real"
        assert await handle.status() == "completed"
    assert support.CALLS["slow"] == 1


async def test_a_real_cancel_still_stops_the_running_step(make_engine: EngineFactory) -> None:
    async with _blocked(make_engine) as (engine, handle):
        assert await handle.cancel()
        try:
            await handle.result(timeout=30)
        except durable.RunCancelled:
            pass
        else:
            raise AssertionError("a cancelled run returned a result")
        # The step body was cancelled in place: the worker freed its slot.
        await support.wait_until(lambda: not engine.worker or not engine.worker.active,
                                 what="the execution to stop")  # fmt: skip
    assert support.CALLS["slow"] == 1


async def test_a_result_awaited_before_the_run_finishes_is_woken(
    make_engine: EngineFactory,
) -> None:
    async with _blocked(make_engine) as (engine, handle):
        results: list[str] = []

        async def wait_result() -> None:
            results.append(await handle.result(timeout=30))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_result)
            await support.wait_until(lambda: engine.runtime.listener.hears_runs,
                                     what="the listener to hear runs")  # fmt: skip
            RELEASE["go"].set()
        assert results == ["real"]


@pytest.mark.parametrize("verb", ["cancel", "pause"])
async def test_a_cancel_or_pause_stops_an_execution_in_a_worker_hearing_no_run_news(
    make_engine: EngineFactory, verb: str
) -> None:
    # Heartbeats 20 s apart: only the notification can stop the execution while waited on.
    async with _blocked(make_engine, lease_seconds=60.0) as (engine, handle):
        stopped = await (handle.cancel() if verb == "cancel" else engine.pause(handle.run_id))
        assert stopped
        # The step body was cancelled in place, told by durable_control alone.
        await support.wait_until(lambda: not engine.worker or not engine.worker.active,
                                 what="the execution to stop")  # fmt: skip
        assert not engine.runtime.listener.hears_runs
        assert await handle.status() == ("cancelled" if verb == "cancel" else "paused")
        if verb == "cancel":
            with pytest.raises(durable.RunCancelled):
                await handle.result(timeout=30)
