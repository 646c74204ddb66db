"""Run notifications reach a process only once something in it waits on runs.

A worker alone hears wake-ups and ``durable_control`` (cancels and pauses, which stop its
executions), not the ``durable_run`` notification of every finish. The first waiter makes
the process listen; a run that changed before the LISTEN took effect is read, not missed.
"""

from __future__ import annotations

import anyio
import pytest

import durable
from durable import step, workflow
from tests.acceptance import support
from tests.acceptance.conftest import EngineFactory

pytestmark = pytest.mark.anyio

GATE: dict[str, anyio.Event] = {}


@step(name="run_news.double")
async def double(x: int) -> int:
    return 2 * x


@workflow(name="run_news.doubler")
async def doubler(x: int) -> int:
    return await double(x)


@step(name="run_news.held")
async def held() -> str:
    GATE["started"].set()
    await GATE["go"].wait()
    return "done"


@workflow(name="run_news.holder")
async def holder() -> str:
    return await held()


async def test_a_worker_hears_run_news_only_once_a_result_is_awaited(
    make_engine: EngineFactory,
) -> None:
    async with make_engine(doubler) as engine:
        listener = engine.runtime.listener
        assert listener.connected
        handle = await engine.start(doubler, 21)
        await support.wait_for_status(handle, "completed")
        assert not listener.hears_runs  # the run finished unheard: nothing waited on it
        # Finished before anything listened: the waiter reads the row.
        assert await handle.result(timeout=30) == 42
        assert listener.hears_runs
        # From now on a start subscribes before its run exists.
        assert await (await engine.start(doubler, 5)).result(timeout=30) == 10


async def test_a_result_awaited_before_the_run_finishes_is_woken(
    make_engine: EngineFactory,
) -> None:
    GATE["started"], GATE["go"] = anyio.Event(), anyio.Event()
    async with make_engine(holder) as engine:
        handle = await engine.start(holder)
        await GATE["started"].wait()
        results: list[str] = []

        async def wait_result() -> None:
            results.append(await handle.result(timeout=30))

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_result)
            await support.wait_until(lambda: engine.runtime.listener.hears_runs,
                                     what="the listener to hear runs")  # fmt: skip
            GATE["go"].set()
        assert results == ["done"]


@pytest.mark.parametrize("verb", ["cancel", "pause"])
async def test_a_cancel_or_pause_stops_an_execution_in_a_worker_hearing_no_run_news(
    make_engine: EngineFactory, verb: str
) -> None:
    GATE["started"], GATE["go"] = anyio.Event(), anyio.Event()
    # Heartbeats 20 s apart: only the notification can stop the execution while waited on.
    async with make_engine(holder, lease_seconds=60.0) as engine:
        handle = await engine.start(holder)
        await GATE["started"].wait()
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
